"""Click annotations: I/O in volume, 3D Slicer and CSV formats, simulation, geodesic expansion."""
