"""Load rehearsals (locust) and the performance benchmark."""
