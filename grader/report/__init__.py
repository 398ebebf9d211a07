"""What people read, drawn from typed results after scoring: figures (figures/), the arrays and
figures of a student's folder (artifacts.py), the per-student PDF, the gradebook and the class dashboard."""
