//! BF16 weights (bfloat16: the high 16 bits of an IEEE f32), dot product with
//! BF16 activations, as GGML (BF16's `vec_dot_type` is BF16: a matvec rounds
//! the activations to bf16 once, then each row reads half the activation bytes
//! of an f32 dot). Layout: a row is `n` consecutive little-endian u16.
//!
//! The accumulation shape is that of AVX-512 BF16's `vdpbf16ps`, which the
//! AVX-512 build uses: `acc_count` accumulators of `lanes` f32; accumulator k
//! takes 2·lanes elements per step, its lane l the pair (2l, 2l+1) as two fused
//! multiply-adds, the odd element first. The other targets (and the scalar
//! reference) widen to f32 and follow the same order, so all agree bit for
//! bit — except where `vdpbf16ps` flushes subnormals (|product or partial sum|
//! < 2^-126) to zero, which the widening paths keep.
const std = @import("std");
const builtin = @import("builtin");
const simd = @import("simd.zig");

pub const Block = u16;
pub const block_elems = 1;
pub const Activation = u16;

const has_bf16 = builtin.cpu.arch == .x86_64 and std.Target.x86.featureSetHas(builtin.cpu.features, .avx512bf16);

/// Elements one accumulator takes per step, and elements per step of the main loop.
const pair_lanes = 2 * simd.lanes;
const step = pair_lanes * simd.acc_count;

const U16x = @Vector(pair_lanes, u16);
const U32x = @Vector(simd.lanes, u32);

inline fn widen(h: u16) f32 {
    return @bitCast(@as(u32, h) << 16);
}

/// `acc += odd·odd` then `acc += even·even` per lane, for 2·lanes bf16 pairs.
inline fn pairStep(acc: simd.F32x, w: U16x, x: U16x) simd.F32x {
    if (has_bf16) {
        return asm ("vdpbf16ps %[x], %[w], %[acc]"
            : [acc] "=v" (-> simd.F32x),
            : [_] "0" (acc),
              [w] "v" (w),
              [x] "v" (x),
        );
    }
    const wu: U32x = @bitCast(w);
    const xu: U32x = @bitCast(x);
    const hi: U32x = @splat(0xffff0000);
    const odd = @mulAdd(simd.F32x, @bitCast(wu & hi), @bitCast(xu & hi), acc);
    return @mulAdd(simd.F32x, @bitCast(wu << @splat(16)), @bitCast(xu << @splat(16)), odd);
}

/// GGML's conversion (`ggml_compute_fp32_to_bf16`): round to nearest even;
/// NaN stays NaN (made quiet). Quantizes weights and, once per matvec, activations.
pub fn quantize(src: []const f32, dst: []Block) void {
    std.debug.assert(src.len == dst.len);
    for (src, dst) |x, *o| {
        const u: u32 = @bitCast(x);
        o.* = if (u & 0x7fffffff > 0x7f800000)
            @intCast((u >> 16) | 64)
        else
            @intCast((u +% (0x7fff + ((u >> 16) & 1))) >> 16);
    }
}

pub fn dequantize(src: []const Block, dst: []f32) void {
    std.debug.assert(src.len == dst.len);
    for (src, dst) |h, *d| d.* = widen(h);
}

/// Scalar reference in the shape of `dot`.
pub fn dotGeneric(w: []const Block, x: []const Block) f32 {
    std.debug.assert(w.len == x.len);
    var acc: [simd.acc_count][simd.lanes]f32 = @splat(@splat(0));
    var i: usize = 0;
    while (i + step <= w.len) : (i += step) {
        for (0..simd.acc_count) |k| {
            for (0..simd.lanes) |l| {
                const j = i + k * pair_lanes + 2 * l;
                acc[k][l] = @mulAdd(f32, widen(w[j + 1]), widen(x[j + 1]), acc[k][l]);
                acc[k][l] = @mulAdd(f32, widen(w[j]), widen(x[j]), acc[k][l]);
            }
        }
    }
    var s = simd.finishScalar(&acc);
    while (i < w.len) : (i += 1) s = @mulAdd(f32, widen(w[i]), widen(x[i]), s);
    return s;
}

/// SIMD dot product (`vdpbf16ps` with AVX-512 BF16, else widening shifts and masks).
pub fn dot(w: []const Block, x: []const Block) f32 {
    std.debug.assert(w.len == x.len);
    var acc: [simd.acc_count]simd.F32x = @splat(@splat(0));
    var i: usize = 0;
    while (i + step <= w.len) : (i += step) {
        inline for (0..simd.acc_count) |k| {
            const o = i + k * pair_lanes;
            acc[k] = pairStep(acc[k], w[o..][0..pair_lanes].*, x[o..][0..pair_lanes].*);
        }
    }
    var s = simd.finish(acc);
    while (i < w.len) : (i += 1) s = @mulAdd(f32, widen(w[i]), widen(x[i]), s);
    return s;
}

test "bf16 dot: SIMD = scalar bit for bit, and close to f64 on the rounded values" {
    const alloc = std.testing.allocator;
    for ([_]usize{ 0, 5, 64, 128, 300, 2048 + 7 }) |n| {
        const x = try alloc.alloc(f32, n);
        defer alloc.free(x);
        const w = try alloc.alloc(f32, n);
        defer alloc.free(w);
        const wh = try alloc.alloc(u16, n);
        defer alloc.free(wh);
        const xh = try alloc.alloc(u16, n);
        defer alloc.free(xh);
        const back = try alloc.alloc(f32, n);
        defer alloc.free(back);
        var prng = std.Random.DefaultPrng.init(n);
        for (w, x) |*a, *b| {
            a.* = prng.random().float(f32) * 2 - 1;
            b.* = prng.random().float(f32) * 2 - 1;
        }
        quantize(w, wh);
        quantize(x, xh);
        dequantize(wh, back);
        for (w, back) |a, b| try std.testing.expect(@abs(a - b) <= @abs(a) / 256);
        var ref: f64 = 0;
        var mag: f64 = 0;
        for (wh, xh) |a, b| {
            const p = @as(f64, widen(a)) * widen(b);
            ref += p;
            mag += @abs(p);
        }
        const fast = dot(wh, xh);
        try std.testing.expectEqual(@as(u32, @bitCast(dotGeneric(wh, xh))), @as(u32, @bitCast(fast)));
        try std.testing.expect(@abs(fast - ref) <= 1e-6 * (mag + 1));
    }
}

test "bf16 dot: each pair adds its odd element first, as vdpbf16ps" {
    // Lane 0 of accumulator 0 holds 2^24 after the first step; the second adds
    // 1 (odd) then −2^24 (even): 2^24 + 1 rounds to 2^24, so the sum is 0.
    // Even first would give (2^24 − 2^24) + 1 = 1.
    var w: [2 * step]u16 = @splat(0);
    const x: [2 * step]u16 = @splat(0x3f80); // 1
    w[0] = 0x4b80; // 2^24
    w[step + 1] = 0x3f80; // 1
    w[step] = 0xcb80; // −2^24
    try std.testing.expectEqual(@as(f32, 0), dotGeneric(&w, &x));
    try std.testing.expectEqual(@as(f32, 0), dot(&w, &x));
}

test "bf16 rounding: ties to even, NaN stays NaN, infinities kept" {
    const src = [_]f32{ 1.0, @bitCast(@as(u32, 0x3f808000)), @bitCast(@as(u32, 0x3f818000)), std.math.nan(f32), -std.math.inf(f32) };
    var h: [src.len]u16 = undefined;
    quantize(&src, &h);
    try std.testing.expectEqual([_]u16{ 0x3f80, 0x3f80, 0x3f82 }, h[0..3].*);
    try std.testing.expect(std.math.isNan(widen(h[3])));
    try std.testing.expectEqual(@as(u16, 0xff80), h[4]);
}
