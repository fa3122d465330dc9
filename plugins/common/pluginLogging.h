/*
 * Logging shared by the plugins of libspp_plugin.so: through the ILoggerFinder that
 * IPluginRegistry::loadLibrary hands to setLoggerFinder, else libnvinfer's global logger (only in
 * SPP_STATIC_REGISTRATION builds, which link libnvinfer), else stderr for warnings and errors.
 * Every call is noexcept: a message that cannot be formatted (out of memory) is replaced, never thrown.
 */
#ifndef SPP_PLUGIN_LOGGING_H
#define SPP_PLUGIN_LOGGING_H

#include "NvInferRuntime.h"

#include <exception>
#include <string>

namespace spp
{

//! Where loggers come from (the library's setLoggerFinder entry point; the first non-null wins).
void setPluginLoggerFinder(nvinfer1::ILoggerFinder* finder) noexcept;

//! A plugin's logger: every message prefixed with the plugin's name, e.g. "[SpatialPyramidPool] ".
class PluginLogger
{
public:
    explicit constexpr PluginLogger(char const* prefix) noexcept
        : mPrefix(prefix)
    {
    }

    void message(nvinfer1::ILogger::Severity severity, std::string const& msg) const noexcept;
    void error(char const* msg) const noexcept;
    void error(std::string const& msg) const noexcept;
    //! For catch handlers: "where: what".
    void exception(char const* where, std::exception const& e) const noexcept;
    //! For catch (...) handlers: "where: failed with an exception (out of memory?)".
    void failed(char const* where) const noexcept;

    //! f()'s result; if it throws, `fallback`, with the exception logged: "where: what" for a
    //! std::exception, else "where: failed with an exception (out of memory?)". For noexcept entry points.
    template <typename R, typename F>
    R guard(char const* where, R fallback, F&& f) const noexcept
    {
        try
        {
            return f();
        }
        catch (std::exception const& e)
        {
            exception(where, e);
        }
        catch (...)
        {
            failed(where);
        }
        return fallback;
    }

private:
    char const* mPrefix;
};

} // namespace spp

#endif // SPP_PLUGIN_LOGGING_H
