"""The study: phases (driver), the runs they make (runs), statistics (compare), report."""
