//! Run-time CPU feature detection. The library is compiled for a baseline;
//! wider code lives in separate library variants, chosen by the loader from
//! these bits (see ffi/load.ts). Nothing here trusts the build machine.
const std = @import("std");
const builtin = @import("builtin");

/// Bit positions of `emoe_cpu_features`; mirrored in ffi/symbols.ts.
pub const Feature = enum(u6) {
    avx2 = 0,
    fma = 1,
    f16c = 2,
    avx512f = 3,
    avx512bw = 4,
    avx512vl = 5,
    avx512dq = 6,
    avx512vnni = 7,
    avx512bf16 = 8,
    amx_int8 = 9,
    neon = 16,
    dotprod = 17,
};

fn bit(f: Feature) u64 {
    return @as(u64, 1) << @intFromEnum(f);
}

const CpuidResult = struct { eax: u32, ebx: u32, ecx: u32, edx: u32 };

fn cpuid(leaf: u32, subleaf: u32) CpuidResult {
    var eax: u32 = undefined;
    var ebx: u32 = undefined;
    var ecx: u32 = undefined;
    var edx: u32 = undefined;
    asm volatile ("cpuid"
        : [eax] "={eax}" (eax),
          [ebx] "={ebx}" (ebx),
          [ecx] "={ecx}" (ecx),
          [edx] "={edx}" (edx),
        : [leaf] "{eax}" (leaf),
          [sub] "{ecx}" (subleaf),
    );
    return .{ .eax = eax, .ebx = ebx, .ecx = ecx, .edx = edx };
}

fn xgetbv0() u64 {
    var lo: u32 = undefined;
    var hi: u32 = undefined;
    asm volatile ("xgetbv"
        : [lo] "={eax}" (lo),
          [hi] "={edx}" (hi),
        : [idx] "{ecx}" (@as(u32, 0)),
    );
    return (@as(u64, hi) << 32) | lo;
}

fn has(reg: u32, pos: u5) bool {
    return (reg >> pos) & 1 == 1;
}

/// Features of the CPU this process runs on, as a bitmask of `Feature`.
pub fn detect() u64 {
    switch (builtin.cpu.arch) {
        .x86_64 => {
            var out: u64 = 0;
            const max_leaf = cpuid(0, 0).eax;
            const l1 = cpuid(1, 0);
            const osxsave = has(l1.ecx, 27);
            if (!osxsave) return 0;
            const xcr0 = xgetbv0();
            const ymm_ok = (xcr0 & 0x6) == 0x6;
            const zmm_ok = (xcr0 & 0xe6) == 0xe6;
            const amx_ok = (xcr0 & 0x60000) == 0x60000;
            if (ymm_ok and has(l1.ecx, 12)) out |= bit(.fma);
            if (ymm_ok and has(l1.ecx, 29)) out |= bit(.f16c);
            if (max_leaf >= 7) {
                const l7 = cpuid(7, 0);
                if (ymm_ok and has(l7.ebx, 5)) out |= bit(.avx2);
                if (zmm_ok) {
                    if (has(l7.ebx, 16)) out |= bit(.avx512f);
                    if (has(l7.ebx, 17)) out |= bit(.avx512dq);
                    if (has(l7.ebx, 30)) out |= bit(.avx512bw);
                    if (has(l7.ebx, 31)) out |= bit(.avx512vl);
                    if (has(l7.ecx, 11)) out |= bit(.avx512vnni);
                    const l7s1 = cpuid(7, 1);
                    if (has(l7s1.eax, 5)) out |= bit(.avx512bf16);
                }
                if (amx_ok and has(l7.edx, 25)) out |= bit(.amx_int8);
            }
            return out;
        },
        .aarch64 => {
            // NEON (ASIMD) is mandatory on AArch64 Linux.
            var out = bit(.neon);
            if (std.Target.aarch64.featureSetHas(builtin.cpu.features, .dotprod)) out |= bit(.dotprod);
            return out;
        },
        else => return 0,
    }
}

/// The name of the instruction set this build of the library was compiled for.
pub fn variantName() []const u8 {
    return switch (builtin.cpu.arch) {
        .x86_64 => if (std.Target.x86.featureSetHas(builtin.cpu.features, .avx512f))
            "x86_64-avx512"
        else if (std.Target.x86.featureSetHas(builtin.cpu.features, .avx2))
            "x86_64-avx2"
        else
            "x86_64-scalar",
        .aarch64 => "aarch64-neon",
        else => "generic",
    };
}

/// True if the CPU running us has everything this build was compiled for.
pub fn buildSupported() bool {
    const have = detect();
    return switch (builtin.cpu.arch) {
        .x86_64 => blk: {
            const f = builtin.cpu.features;
            const X = std.Target.x86;
            const need = [_]struct { X.Feature, Feature }{
                .{ .avx2, .avx2 },         .{ .fma, .fma },               .{ .f16c, .f16c },
                .{ .avx512f, .avx512f },   .{ .avx512bw, .avx512bw },     .{ .avx512vl, .avx512vl },
                .{ .avx512dq, .avx512dq }, .{ .avx512vnni, .avx512vnni }, .{ .avx512bf16, .avx512bf16 },
            };
            for (need) |n| {
                if (X.featureSetHas(f, n[0]) and have & bit(n[1]) == 0) break :blk false;
            }
            break :blk true;
        },
        else => true,
    };
}

test "the test binary runs on a CPU that supports its build" {
    try std.testing.expect(buildSupported());
}
