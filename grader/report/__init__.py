"""What people read: figures, the per-student PDF and the gradebook."""
