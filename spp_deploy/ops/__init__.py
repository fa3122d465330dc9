"""The pooling ops themselves, below every other stage (they import only ``util``):

- ``bins``: the bin rules, written once against an ops backend (numpy, or symbolic ONNX);
- ``pyramid``: ``SpatialPyramidPool`` and its ``torch.library`` custom op;
- ``window_pyramid``: SPP-net's per-window pyramid (``WindowSpatialPyramidPool``) and its custom op;
- ``projection``: SPP-net's window projection (pixels -> conv cells), once, against an ops backend;
- ``table_pyramid``: a pyramid evaluated from measured per-size bin tables (probed layers);
- ``size_dependent_pool``: one pooling call whose windows follow the input size.
"""
