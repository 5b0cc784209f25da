//! Keeps this shared library mapped until the process ends once it has
//! started threads.
//!
//! Deno unloads an FFI library (dlclose) as the process exits, while the
//! threads of a pool or a pread store that a script never closed may still be
//! running — or polling — inside the library's code: they would execute
//! unmapped memory and the process would die of SIGSEGV after its script had
//! finished. Reopening the library with RTLD_NODELETE makes every later dlclose
//! keep it mapped; the threads then end with the process, as in any program.
const std = @import("std");
const builtin = @import("builtin");

const DlInfo = extern struct {
    dli_fname: ?[*:0]const u8,
    dli_fbase: ?*anyopaque,
    dli_sname: ?[*:0]const u8,
    dli_saddr: ?*anyopaque,
};
extern "c" fn dladdr(addr: *const anyopaque, info: *DlInfo) c_int;

var pinned = std.once(pin);

fn pin() void {
    // Statically linked test binaries (musl) have no dynamic loader to ask.
    if (builtin.output_mode != .Lib or builtin.link_mode != .dynamic) return;
    var info: DlInfo = undefined;
    if (dladdr(@ptrCast(&pin), &info) == 0) return;
    const name = info.dli_fname orelse return;
    // NOLOAD: only takes a reference to the copy already loaded; never loads another.
    _ = std.c.dlopen(name, .{ .NOW = true, .NOLOAD = true, .NODELETE = true });
}

/// Call before starting a thread that runs library code.
pub fn pinBeforeThreads() void {
    pinned.call();
}
