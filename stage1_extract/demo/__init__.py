"""The demo generator: the geometry of motion (kinematics), generated people posed into NTU-25
joints (body), the parametric NTU actions they perform (motions), virtual Kinects and rendering
(render), what a Kinect records (kinect), per-layout settings (configs) and writers (writers), the
generation entry points (dataset: generate_demo, generate_utd, generate_sysu) and the offline demo
models (models)."""
