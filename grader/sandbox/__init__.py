"""The untrusted side: a server process that holds one submission, its isolation, and the client
the grader talks to. They meet the trusted side only at grader.protocol."""
