#!/usr/bin/env bash
# Compile-check the SpatialPyramidPool plugin against a TensorRT headers directory (no libnvinfer,
# no GPU needed): the plugin TU with g++ and with nvcc's host compiler, and the CUDA kernel.
#
#   plugins/tools/compile_check.sh /path/to/TensorRT/include [cuda_include_dir]
#
# Prints the NV_TENSORRT_MAJOR/MINOR found and one OK/FAIL line per step; exit status = failures.
set -u
TRT_INC=${1:?usage: compile_check.sh <TensorRT include dir> [CUDA include dir]}
CUDA_INC=${2:-${CUDA_HOME:-/usr/local/cuda}/include}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SRC=$HERE/spatialPyramidPoolPlugin
CXX=${CXX:-g++}
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if [ ! -f "$TRT_INC/NvInfer.h" ]; then
  echo "FAIL: $TRT_INC/NvInfer.h not found"; exit 1
fi
ver=$(printf '#include "NvInferVersion.h"\nNV_TENSORRT_MAJOR NV_TENSORRT_MINOR NV_TENSORRT_PATCH\n' \
      | "$CXX" -E -P -I"$TRT_INC" -x c++ - 2>/dev/null | tail -1)
echo "TensorRT headers: $TRT_INC  (NV_TENSORRT_MAJOR MINOR PATCH = $ver)"

fails=0
step() {  # step <name> <cmd...>
  local name=$1; shift
  if "$@" >"$OUT/log" 2>&1; then
    echo "OK   $name"
  else
    echo "FAIL $name"; sed 's/^/     /' "$OUT/log" | head -40; fails=$((fails + 1))
  fi
  if grep -qi "warning" "$OUT/log"; then sed 's/^/     /' "$OUT/log" | grep -i -A3 warning | head -20; fi
}

# -isystem: the TensorRT headers warn about their own deprecated enums; only our warnings matter.
# Hidden visibility and the version script as in CMakeLists.txt.
COMMON=(-std=c++17 -I"$SRC" -isystem "$TRT_INC" -isystem "$CUDA_INC" -fvisibility=hidden)
step "g++ -c spatialPyramidPoolPlugin.cpp (default: no static registration)" \
  "$CXX" "${COMMON[@]}" -Wall -Wextra -fPIC -c "$SRC/spatialPyramidPoolPlugin.cpp" -o "$OUT/plugin.o"
step "g++ -c spatialPyramidPoolPlugin.cpp -DSPP_STATIC_REGISTRATION=1" \
  "$CXX" "${COMMON[@]}" -DSPP_STATIC_REGISTRATION=1 -Wall -Wextra -fPIC -c "$SRC/spatialPyramidPoolPlugin.cpp" \
  -o "$OUT/plugin_static.o"
step "g++ -c sppConfig.cpp" "$CXX" -std=c++17 -fvisibility=hidden -Wall -Wextra -fPIC -c "$SRC/sppConfig.cpp" -o "$OUT/cfg.o"
if [ -x "$NVCC" ]; then
  step "nvcc -x cu -c spatialPyramidPoolPlugin.cpp (host TU through nvcc)" \
    "$NVCC" -std=c++17 -I"$SRC" -isystem "$TRT_INC" -isystem "$CUDA_INC" -DSPP_STATIC_REGISTRATION=1 -x cu \
    -arch=sm_75 -Xcompiler=-fPIC,-fvisibility=hidden -c "$SRC/spatialPyramidPoolPlugin.cpp" -o "$OUT/plugin_nvcc.o"
  step "nvcc -c spatialPyramidPoolKernel.cu (sm_75)" \
    "$NVCC" -std=c++17 -I"$SRC" -arch=sm_75 -Xcompiler=-fPIC,-fvisibility=hidden -c "$SRC/spatialPyramidPoolKernel.cu" \
    -o "$OUT/k.o"
  # Link the default build into a shared object (cudart left undefined): proves the TU set is
  # complete, and that it needs nothing from libnvinfer.
  step "link libspp_plugin.so (version script; undefined cudart symbols allowed)" \
    "$CXX" -shared -Wl,--version-script="$SRC/spp_plugin.map" -o "$OUT/libspp_plugin.so" \
    "$OUT/plugin.o" "$OUT/cfg.o" "$OUT/k.o"
  if [ -f "$OUT/libspp_plugin.so" ]; then
    exported=$(nm -D --defined-only "$OUT/libspp_plugin.so" | awk '{print $3}' | sort | tr '\n' ' ')
    step "exports exactly getCreators setLoggerFinder (got: $exported)" test "$exported" = "getCreators setLoggerFinder "
    nvinfer=$(nm -D --undefined-only "$OUT/libspp_plugin.so" | awk '{print $2}' | grep -E 'getPluginRegistry|getLogger|createInfer' | tr '\n' ' ')
    step "default build needs no libnvinfer symbol (got: ${nvinfer:-none})" test -z "$nvinfer"
  fi
else
  echo "SKIP nvcc steps (nvcc not found)"
fi
exit $fails
