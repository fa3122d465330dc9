#!/usr/bin/env bash
# Compile-check libspp_plugin.so (SpatialPyramidPool + WindowSpatialPyramidPool) against a TensorRT
# headers directory (no libnvinfer, no GPU needed): every plugin TU with g++ (with and without static
# registration) and through nvcc, both CUDA kernels, and a link of the whole library.
#
#   plugins/tools/compile_check.sh /path/to/TensorRT/include [cuda_include_dir]
#
# Prints the NV_TENSORRT_MAJOR/MINOR found and one OK/FAIL line per step; exit status = failures.
set -u
TRT_INC=${1:?usage: compile_check.sh <TensorRT include dir> [CUDA include dir]}
CUDA_INC=${2:-${CUDA_HOME:-/usr/local/cuda}/include}
HERE=$(cd "$(dirname "$0")/.." && pwd)
SRC=$HERE/spatialPyramidPoolPlugin
WIN=$HERE/windowSpatialPyramidPoolPlugin
COMMON_SRC=$HERE/common
API=$HERE/api
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
COMMON=(-std=c++17 -I"$SRC" -isystem "$TRT_INC" -isystem "$CUDA_INC" -fvisibility=hidden -Wall -Wextra -fPIC)
# The TensorRT-facing translation units (each compiled twice: default, and with static registration).
TUS=("$SRC/spatialPyramidPoolPlugin.cpp" "$WIN/windowSpatialPyramidPoolPlugin.cpp" "$COMMON_SRC/pluginLogging.cpp"
     "$API/pluginLibrary.cpp")
objs=()
for tu in "${TUS[@]}"; do
  name=$(basename "$tu" .cpp)
  step "g++ -c $name.cpp (default: no static registration)" "$CXX" "${COMMON[@]}" -c "$tu" -o "$OUT/$name.o"
  step "g++ -c $name.cpp -DSPP_STATIC_REGISTRATION=1" "$CXX" "${COMMON[@]}" -DSPP_STATIC_REGISTRATION=1 -c "$tu" \
    -o "$OUT/${name}_static.o"
  objs+=("$OUT/$name.o")
done
for cfg in "$SRC/sppConfig.cpp" "$WIN/windowConfig.cpp"; do
  name=$(basename "$cfg" .cpp)
  step "g++ -c $name.cpp" "$CXX" -std=c++17 -fvisibility=hidden -Wall -Wextra -fPIC -c "$cfg" -o "$OUT/$name.o"
  objs+=("$OUT/$name.o")
done
if [ -x "$NVCC" ]; then
  for tu in "${TUS[@]}"; do
    name=$(basename "$tu" .cpp)
    step "nvcc -x cu -c $name.cpp (host TU through nvcc)" \
      "$NVCC" -std=c++17 -I"$SRC" -isystem "$TRT_INC" -isystem "$CUDA_INC" -DSPP_STATIC_REGISTRATION=1 -x cu \
      -arch=sm_75 -Xcompiler=-fPIC,-fvisibility=hidden -c "$tu" -o "$OUT/${name}_nvcc.o"
  done
  # Each kernel for every architecture in SPP_CHECK_ARCHS (default: sm_75, the oldest supported;
  # sm_80 and sm_90, where register and shared-memory limits differ); the first one is linked.
  for cu in "$SRC/spatialPyramidPoolKernel.cu" "$WIN/windowSpatialPyramidPoolKernel.cu"; do
    name=$(basename "$cu" .cu)
    first=1
    for arch in ${SPP_CHECK_ARCHS:-75 80 90}; do
      step "nvcc -c $name.cu (sm_$arch, warnings are errors)" \
        "$NVCC" -std=c++17 -I"$SRC" -arch=sm_$arch -Werror=all-warnings -Xcompiler=-fPIC,-fvisibility=hidden \
        -c "$cu" -o "$OUT/${name}_sm$arch.o"
      if [ $first = 1 ]; then objs+=("$OUT/${name}_sm$arch.o"); first=0; fi
    done
  done
  # Link the default build into a shared object (cudart left undefined): proves the TU set is
  # complete, and that it needs nothing from libnvinfer.
  step "link libspp_plugin.so (version script; undefined cudart symbols allowed)" \
    "$CXX" -shared -Wl,--version-script="$API/spp_plugin.map" -o "$OUT/libspp_plugin.so" "${objs[@]}"
  if [ -f "$OUT/libspp_plugin.so" ]; then
    exported=$(nm -D --defined-only "$OUT/libspp_plugin.so" | awk '{print $3}' | sort | tr '\n' ' ')
    step "exports exactly getCreators setLoggerFinder (got: $exported)" test "$exported" = "getCreators setLoggerFinder "
    nvinfer=$(nm -D --undefined-only "$OUT/libspp_plugin.so" | awk '{print $2}' | grep -E 'getPluginRegistry|getLogger|createInfer' | tr '\n' ' ')
    step "default build needs no libnvinfer symbol (got: ${nvinfer:-none})" test -z "$nvinfer"
    for plugin in SpatialPyramidPool WindowSpatialPyramidPool; do
      step "library holds the $plugin plugin name" grep -q -a "$plugin" "$OUT/libspp_plugin.so"
    done
  fi
  # Host smoke test (no GPU, no libnvinfer): the same objects linked with libcudart, dlopen'ed and
  # driven through the loadLibrary entry points and the plugin interfaces (plugin_host_check.cpp).
  CUDART_DIR=""
  for d in "$(dirname "$NVCC")/../lib64" "$(dirname "$NVCC")/../lib" "${CUDA_INC}/../lib64" "${CUDA_INC}/../lib"; do
    if [ -e "$d/libcudart.so" ]; then CUDART_DIR=$d; break; fi
  done
  if [ -n "$CUDART_DIR" ]; then
    mkdir -p "$OUT/run"
    step "link libspp_plugin.so with libcudart (no undefined symbols)" \
      "$CXX" -shared -Wl,--version-script="$API/spp_plugin.map" -Wl,--no-undefined -o "$OUT/run/libspp_plugin.so" \
      "${objs[@]}" -L"$CUDART_DIR" -Wl,-rpath,"$CUDART_DIR" -lcudart
    step "g++ plugin_host_check.cpp" "$CXX" -std=c++17 -Wall -Wextra -isystem "$TRT_INC" -isystem "$CUDA_INC" \
      "$HERE/tools/plugin_host_check.cpp" -ldl -o "$OUT/run/plugin_host_check"
    if [ -x "$OUT/run/plugin_host_check" ] && [ -f "$OUT/run/libspp_plugin.so" ]; then
      step "host smoke test: getCreators, createPlugin (fields and serialized blob), types, formats, errors logged" \
        "$OUT/run/plugin_host_check" "$OUT/run/libspp_plugin.so"
    fi
  else
    echo "SKIP host smoke test (libcudart.so not found next to nvcc)"
  fi
else
  echo "SKIP nvcc steps (nvcc not found)"
fi
exit $fails
