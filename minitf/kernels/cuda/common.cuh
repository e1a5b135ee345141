// Shared device code of the fused kernels: math overloads for float and double, warp and
// block reductions. minitf/kernels/source.py builds each module's translation unit as
//   the MINITF_* constant #defines (from minitf/kernels/constants.py) + this file + <module>.cu
// and _compile.py compiles it with NVRTC (cupy.RawModule), once per dtype and device.
//
// Conventions shared by all kernels:
//   * every kernel is a function template over the element type T (float or double),
//     declared as `template <typename T>` followed by `__global__ void NAME(` on the next
//     line: source.py finds the kernel names that way, and _compile.py instantiates
//     NAME<float> or NAME<double> through RawModule's name_expressions;
//   * no include directive: NVRTC gets no system headers;
//   * arrays are C-contiguous; "rows" kernels treat x as (rows, cols) with one block per row
//     (blockDim.x a multiple of 32, at most 1024), reducing with warp shuffles and a
//     32-slot shared buffer;
//   * elementwise kernels use a grid-stride loop over n elements;
//   * sizes and offsets are `long long`, so arrays of more than 2**31 elements work;
//   * scalar hyperparameters arrive already converted to T (as NumPy does with Python floats).

// ---- math overloads: one spelling for float and double --------------------------
__device__ __forceinline__ float k_exp(float v) { return expf(v); }
__device__ __forceinline__ double k_exp(double v) { return exp(v); }
__device__ __forceinline__ float k_log(float v) { return logf(v); }
__device__ __forceinline__ double k_log(double v) { return log(v); }
__device__ __forceinline__ float k_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double k_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float k_erf(float v) { return erff(v); }
__device__ __forceinline__ double k_erf(double v) { return erf(v); }
__device__ __forceinline__ float k_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double k_tanh(double v) { return tanh(v); }
// -inf and a quiet NaN without <math.h> (NVRTC has no INFINITY macro).
__device__ __forceinline__ float k_neg_inf(float) { return -__int_as_float(0x7f800000); }
__device__ __forceinline__ double k_neg_inf(double) { return -__longlong_as_double(0x7ff0000000000000LL); }
__device__ __forceinline__ float k_nan(float) { return __int_as_float(0x7fffffff); }
__device__ __forceinline__ double k_nan(double) { return __longlong_as_double(0x7fffffffffffffffLL); }

// finite <=> v - v == 0 (inf - inf and NaN - NaN are NaN); exact without fast-math.
template <typename T>
__device__ __forceinline__ bool k_isfinite(T v) { return v - v == T(0); }

// max that propagates NaN, as numpy.max does.
template <typename T>
__device__ __forceinline__ T k_max(T a, T b) { return (a > b || a != a) ? a : b; }

// ---- warp and block reductions (blockDim.x must be a multiple of 32) ---------------
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = k_max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block; every thread gets the result. sbuf: 32 shared slots.
template <typename T>
__device__ T block_sum(T v, T* sbuf) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();  // the previous reduction's readers are done with sbuf
    if (lane == 0) sbuf[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < nwarps ? sbuf[lane] : T(0);
        v = warp_sum(v);
        if (lane == 0) sbuf[0] = v;
    }
    __syncthreads();
    return sbuf[0];
}

// Max over the block; every thread gets the result. sbuf: 32 shared slots.
template <typename T>
__device__ T block_max(T v, T* sbuf) {
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    const int nwarps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sbuf[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < nwarps ? sbuf[lane] : k_neg_inf(T(0));
        v = warp_max(v);
        if (lane == 0) sbuf[0] = v;
    }
    __syncthreads();
    return sbuf[0];
}
