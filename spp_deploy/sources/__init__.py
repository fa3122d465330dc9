"""Where models come from and how they are run as the user has them:

- ``seeds``, ``zoo``: the seed SPP implementations; built-in models;
- ``loading``: ``zoo:NAME | module:factory | file.py:factory``, kwargs, weights;
- ``modelstate``: export and probing see eval mode, everything restored afterwards;
- ``heads``: ultralytics output heads in their dynamic ONNX export mode (``export_mode``);
- ``outputs``: tuple/list/dict outputs in torch.onnx's order, and their names;
- ``trial``: ``source_error``, whether the model runs at a shape.
"""
