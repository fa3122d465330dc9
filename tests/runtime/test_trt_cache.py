"""The engine cache key (``runtime/trt/cache.py``) changes with every ingredient of the engine, how
it was built and the spp-deploy version included."""

import spp_deploy
from spp_deploy.runtime.trt import cache, profiles


def test_engine_cache_key_covers_every_ingredient():
    prof = profiles.Profile({"input": ((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 32, 32))})
    base = dict(onnx_bytes=b"model", trt_version="10.16.0", gpu_name="H100", compute_capability="9.0",
                precision="fp32", profiles=[prof], plugin_sha256=None)
    k = cache.engine_cache_key(**base)
    assert k == cache.engine_cache_key(**base) and len(k) == 64
    variants = [
        {"onnx_bytes": b"model2"}, {"trt_version": "11.1.0"}, {"gpu_name": "A100"}, {"compute_capability": "8.0"},
        {"precision": "fp16"}, {"plugin_sha256": "ab" * 32},
        {"profiles": [profiles.Profile({"input": ((1, 3, 8, 8), (1, 3, 16, 16), (2, 3, 33, 32))})]},
    ]
    keys = {cache.engine_cache_key(**{**base, **v}) for v in variants}
    assert len(keys) == len(variants) and k not in keys


def test_cache_key_includes_build_recipe_and_spp_deploy_version():
    prof = profiles.Profile({"input": ((1, 3, 8, 8), (1, 3, 8, 8), (1, 3, 8, 8))})
    args = (b"onnx", "10.16.0", "H100", "9.0", "fp16", [prof], None)
    here = cache.engine_cache_key(*args)
    assert here == cache.engine_cache_key(*args, recipe=cache.BUILD_RECIPE, spp_version=spp_deploy.__version__)
    others = {cache.engine_cache_key(*args, recipe=cache.BUILD_RECIPE - 1),
              cache.engine_cache_key(*args, spp_version=spp_deploy.__version__ + ".post1")}
    assert len(others) == 2 and here not in others
