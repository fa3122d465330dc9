/*
 * IEEE half bits -> float on the host (exact), for the CPU references (no CUDA headers needed).
 */
#ifndef SPP_HALF_H
#define SPP_HALF_H

#include <cstdint>
#include <cstring>

namespace spp
{

//! IEEE half bits -> float (exact).
inline float halfToFloat(uint16_t h)
{
    uint32_t const sign = static_cast<uint32_t>(h & 0x8000U) << 16;
    uint32_t const exp = (h >> 10) & 0x1FU;
    uint32_t mant = h & 0x3FFU;
    uint32_t bits;
    if (exp == 0)
    {
        if (mant == 0)
        {
            bits = sign;
        }
        else
        {
            // subnormal: value = mant * 2^-24
            int e = -1;
            do
            {
                ++e;
                mant <<= 1;
            } while ((mant & 0x400U) == 0);
            mant &= 0x3FFU;
            bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | (mant << 13);
        }
    }
    else if (exp == 0x1F)
    {
        bits = sign | 0x7F800000U | (mant << 13); // inf / NaN (payload kept, quiet bit may be unset)
        if (mant != 0)
        {
            bits |= 0x00400000U;
        }
    }
    else
    {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

} // namespace spp

#endif // SPP_HALF_H
