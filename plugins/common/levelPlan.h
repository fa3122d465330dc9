/*
 * The host-side level plan both CUDA launchers (spatialPyramidPoolKernel.cu,
 * windowSpatialPyramidPoolKernel.cu) build before a launch: where each level's bins start, and which
 * levels the kernel derives from the finest level's bins (max pooling over nested bins: a level whose
 * n divides the finest n) instead of reading the input again. planLevels is host code; the kernels
 * read the LevelPlan fields (kernelCommon.cuh's levelBin).
 */
#ifndef SPP_LEVEL_PLAN_H
#define SPP_LEVEL_PLAN_H

#include "sppBins.h" // kMAX_NB_LEVELS

#include <algorithm>
#include <cstdint>

namespace spp
{

//! The level list (nbLevels, levels[]) of one holder into another: a config into kernel parameters
//! or the C ABI's struct. `from` is validated (nbLevels within kMAX_NB_LEVELS).
template <typename To, typename From>
void copyLevels(From const& from, To& to)
{
    to.nbLevels = from.nbLevels;
    std::copy(from.levels, from.levels + from.nbLevels, to.levels);
}

//! The level fields of both kernels' plans (each kernel's plan derives from it, passed by value).
struct LevelPlan
{
    int32_t nbLevels;
    int32_t levels[kMAX_NB_LEVELS];
    int32_t binOffset[kMAX_NB_LEVELS]; //!< prefix sum of n^2 over previous levels
    uint32_t derivedMask;               //!< bit l: level l is derived from the finest level
    int32_t fineLevel;                  //!< index of the level kept in shared memory, -1 if none
    int32_t directBins;                 //!< sum of n^2 over levels read from the input
    int32_t derivedBins;                //!< sum of n^2 over derived levels
    int32_t binsPerChannel;             //!< sum of n^2
};

//! Fills a plan's level fields from levels[0..nbLevels) (already validated): levels, binOffset,
//! binsPerChannel, derivedMask / fineLevel (only when `derive`; fineLevel -1 when nothing is derived),
//! directBins and derivedBins. The finest level is the first with the largest n.
inline void planLevels(int32_t const* levels, int32_t nbLevels, bool derive, LevelPlan& p)
{
    p.nbLevels = nbLevels;
    p.fineLevel = -1;
    p.derivedMask = 0;
    int32_t finest = 0;
    int32_t sum = 0;
    for (int32_t l = 0; l < nbLevels; ++l)
    {
        int32_t const n = levels[l];
        p.levels[l] = n;
        p.binOffset[l] = sum;
        sum += n * n;
        if (n > levels[finest])
        {
            finest = l;
        }
    }
    p.binsPerChannel = sum;
    if (derive)
    {
        int32_t const nf = levels[finest];
        for (int32_t l = 0; l < nbLevels; ++l)
        {
            if (l != finest && nf % levels[l] == 0)
            {
                p.derivedMask |= 1U << l;
            }
        }
        if (p.derivedMask != 0)
        {
            p.fineLevel = finest;
        }
    }
    p.directBins = 0;
    p.derivedBins = 0;
    for (int32_t l = 0; l < nbLevels; ++l)
    {
        int32_t const nn = levels[l] * levels[l];
        ((p.derivedMask >> l) & 1U ? p.derivedBins : p.directBins) += nn;
    }
}

} // namespace spp

#endif // SPP_LEVEL_PLAN_H
