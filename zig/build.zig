//! Builds libedgemoe for the host and its variants, and runs the Zig tests.
//!
//!   zig build                      libedgemoe.so (x86-64-v3: AVX2/FMA/F16C) and
//!                                  libedgemoe-avx512.so (x86-64-v4 + VNNI/BF16)
//!   zig build -Dtarget=aarch64-linux   libedgemoe.so for ARM (NEON)
//!   zig build test                 unit tests of every variant this machine can run
//!   zig build test -Dtest-aarch64=true -fqemu   also the aarch64 tests under qemu-user
//!
//! The TypeScript loader picks the widest variant the CPU supports at run time
//! (see ffi/load.ts); nothing here assumes the build machine's CPU.
const std = @import("std");

const Variant = struct {
    /// Library file name suffix ("" for the baseline).
    suffix: []const u8,
    query: std.Target.Query,
};

fn x86Variant(suffix: []const u8, model: *const std.Target.Cpu.Model, add: []const std.Target.x86.Feature) Variant {
    return .{ .suffix = suffix, .query = .{
        .cpu_arch = .x86_64,
        .os_tag = .linux,
        .abi = .gnu,
        .cpu_model = .{ .explicit = model },
        .cpu_features_add = std.Target.x86.featureSet(add),
    } };
}

pub fn build(b: *std.Build) void {
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimization mode (default ReleaseFast)") orelse .ReleaseFast;
    const arch_opt = b.option([]const u8, "arch", "x86_64 (default) or aarch64") orelse "x86_64";
    const test_aarch64 = b.option(bool, "test-aarch64", "Also run the aarch64 tests (needs -fqemu)") orelse false;
    const test_filter = b.option([]const u8, "test-filter", "Run only tests whose name contains this");

    const variants: []const Variant = if (std.mem.eql(u8, arch_opt, "aarch64"))
        &.{.{ .suffix = "", .query = .{ .cpu_arch = .aarch64, .os_tag = .linux, .abi = .gnu } }}
    else
        &.{
            x86Variant("", &std.Target.x86.cpu.x86_64_v3, &.{}),
            x86Variant("-avx512", &std.Target.x86.cpu.x86_64_v4, &.{ .avx512vnni, .avx512bf16 }),
        };

    for (variants) |v| {
        const mod = b.createModule(.{
            .root_source_file = b.path("src/root.zig"),
            .target = b.resolveTargetQuery(v.query),
            .optimize = optimize,
            .link_libc = true,
        });
        const lib = b.addLibrary(.{
            .linkage = .dynamic,
            .name = b.fmt("edgemoe{s}", .{v.suffix}),
            .root_module = mod,
        });
        b.installArtifact(lib);
    }

    const test_step = b.step("test", "Run the unit tests");
    const host = b.graph.host.result;
    const host_avx512 = host.cpu.arch == .x86_64 and
        std.Target.x86.featureSetHasAll(host.cpu.features, .{ .avx512f, .avx512bw, .avx512vl, .avx512dq, .avx512vnni, .avx512bf16 });

    // Each entry: a target and the mode its tests build in. ReleaseSafe keeps
    // bounds and overflow checks on, so the safety-checked build is tested too.
    const TestRun = struct { v: Variant, mode: std.builtin.OptimizeMode };
    var tests: [5]?TestRun = @splat(null);
    if (host.cpu.arch == .x86_64) {
        tests[0] = .{ .v = x86Variant("x86_64_v3", &std.Target.x86.cpu.x86_64_v3, &.{}), .mode = optimize };
        tests[1] = .{ .v = x86Variant("x86_64_v3-safe", &std.Target.x86.cpu.x86_64_v3, &.{}), .mode = .ReleaseSafe };
        if (host_avx512) tests[2] = .{ .v = x86Variant("x86_64_v4", &std.Target.x86.cpu.x86_64_v4, &.{ .avx512vnni, .avx512bf16 }), .mode = optimize };
        // The portable build: no SIMD beyond SSE2, so the generic vector code paths run.
        tests[3] = .{ .v = x86Variant("x86_64", &std.Target.x86.cpu.x86_64, &.{}), .mode = optimize };
    }
    if (test_aarch64 or host.cpu.arch == .aarch64) {
        // Static musl so qemu-user needs no aarch64 sysroot.
        tests[4] = .{ .v = .{ .suffix = "aarch64", .query = .{ .cpu_arch = .aarch64, .os_tag = .linux, .abi = .musl } }, .mode = optimize };
    }
    for (tests) |maybe| {
        const run_spec = maybe orelse continue;
        const v = run_spec.v;
        const t = b.addTest(.{
            .name = b.fmt("test-{s}", .{v.suffix}),
            .root_module = b.createModule(.{
                .root_source_file = b.path("src/root.zig"),
                .target = b.resolveTargetQuery(v.query),
                .optimize = run_spec.mode,
                // As the shipped library: libc for its allocator and threads.
                .link_libc = true,
            }),
            .filters = if (test_filter) |f| b.dupeStrings(&.{f}) else &.{},
        });
        const run = b.addRunArtifact(t);
        run.skip_foreign_checks = false;
        test_step.dependOn(&run.step);
    }
}
