#include "pluginLogging.h"

#include <cstdio>
#include <mutex>

namespace spp
{
namespace
{

std::mutex gLoggerMutex;
nvinfer1::ILoggerFinder* gLoggerFinder{nullptr};

//! Allocates nothing: safe as the last resort of the other functions.
void logRaw(nvinfer1::ILogger::Severity severity, char const* msg) noexcept
{
    nvinfer1::ILogger* logger = nullptr;
    {
        std::lock_guard<std::mutex> lk(gLoggerMutex);
        if (gLoggerFinder != nullptr)
        {
            logger = gLoggerFinder->findLogger();
        }
    }
#if defined(SPP_STATIC_REGISTRATION)
    if (logger == nullptr)
    {
        logger = getLogger(); // libnvinfer's global logger (linked in this configuration)
    }
#endif
    if (logger != nullptr)
    {
        logger->log(severity, msg);
    }
    else if (severity <= nvinfer1::ILogger::Severity::kWARNING)
    {
        std::fprintf(stderr, "%s\n", msg);
    }
}

} // namespace

void setPluginLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept
{
    std::lock_guard<std::mutex> lk(gLoggerMutex);
    if (gLoggerFinder == nullptr && finder != nullptr)
    {
        gLoggerFinder = finder;
    }
}

void PluginLogger::message(nvinfer1::ILogger::Severity severity, std::string const& msg) const noexcept
{
    try
    {
        std::string const full = std::string(mPrefix) + msg;
        logRaw(severity, full.c_str());
    }
    catch (...)
    {
        logRaw(severity, "(plugin message lost: out of memory)");
    }
}

void PluginLogger::error(char const* msg) const noexcept
{
    try
    {
        message(nvinfer1::ILogger::Severity::kERROR, std::string(msg));
    }
    catch (...)
    {
        logRaw(nvinfer1::ILogger::Severity::kERROR, msg);
    }
}

void PluginLogger::error(std::string const& msg) const noexcept
{
    message(nvinfer1::ILogger::Severity::kERROR, msg);
}

void PluginLogger::exception(char const* where, std::exception const& e) const noexcept
{
    try
    {
        error(std::string(where) + ": " + e.what());
    }
    catch (...)
    {
        logRaw(nvinfer1::ILogger::Severity::kERROR, e.what());
    }
}

void PluginLogger::failed(char const* where) const noexcept
{
    try
    {
        error(std::string(where) + ": failed with an exception (out of memory?)");
    }
    catch (...)
    {
        logRaw(nvinfer1::ILogger::Severity::kERROR, where);
    }
}

} // namespace spp
