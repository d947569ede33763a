"""A repository rule exposing system libraries found by pkg-config.

Each entry of `libraries` maps a target name to a space-separated list of
pkg-config modules; the generated @<name>//:<target> is a cc_library whose
copts/linkopts are what pkg-config prints. Headers live in /usr/include and
are found by the default include path. The rule fails at fetch time, naming
the module, when a package is missing, so a machine without the setup step
gets a clear message instead of a link error.
"""

def _words(text):
    return [w for w in text.replace("\n", " ").replace("\t", " ").split(" ") if w]

def _system_libs_impl(ctx):
    pkg_config = ctx.which("pkg-config")
    if pkg_config == None:
        fail("pkg-config not found: run the setup step in README.md")
    build = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, modules in ctx.attr.libraries.items():
        mods = modules.split(" ")
        cflags = ctx.execute([pkg_config, "--cflags"] + mods)
        libs = ctx.execute([pkg_config, "--libs"] + mods)
        if cflags.return_code != 0 or libs.return_code != 0:
            fail("pkg-config cannot find %s: %s%s (run the setup step in README.md)" %
                 (modules, cflags.stderr, libs.stderr))
        cflag_list = _words(cflags.stdout)
        build.append("cc_library(")
        build.append("    name = %r," % name)
        build.append("    defines = %r," % [f[2:] for f in cflag_list if f.startswith("-D")])
        build.append("    copts = %r," % [f for f in cflag_list if not f.startswith("-D")])
        build.append("    linkopts = %r," % _words(libs.stdout))
        build.append(")")
        build.append("")
    ctx.file("BUILD", "\n".join(build))
    ctx.file("WORKSPACE", "workspace(name = %r)\n" % ctx.name)

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {"libraries": attr.string_dict(mandatory = True)},
    local = True,
    environ = ["PKG_CONFIG_PATH"],
)
