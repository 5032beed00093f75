"""The demo generator: parametric motions (motions), virtual Kinects and rendering (render), what a
Kinect records (kinect), per-layout settings (configs) and writers (writers), the generation entry
points (dataset: generate_demo, generate_utd, generate_sysu) and the offline demo models (models)."""
