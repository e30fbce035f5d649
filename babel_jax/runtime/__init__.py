"""Runtime: what every job needs before it computes anything.

factory.py (mesh, model, abstract parameters and their shardings, from a config, built once),
sharding.py (the mesh and the logical axis rules), rundir.py (the layout of a run directory, one
owner), checkpoints.py (Orbax save, restore, retention, step selection), walk.py (the walk over a
run's checkpoints that probes and evaluation share).
"""
