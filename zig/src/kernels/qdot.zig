//! The shared shape of every 32-element block dot product (Q4_0, Q4_1, Q5_0,
//! Q5_1, Q8_0 weights against Q8_0/Q8_1 activations).
//!
//! Per block the weight values (unpacked to bytes) are multiplied with the
//! activation bytes and summed in exact integers as 8 quad sums,
//! lane l = Σ_{k<4} w[4l+k]·a[4l+k] (what `vpdpbusd`, or `pmaddubsw` then
//! `pmaddwd`, computes). The quad sums, converted to f32, are
//! fused-multiply-added with the block's scale (d_w·d_a, one f32 rounding)
//! into 8 accumulator lanes: lanes 0..7 of a logical 16 for even blocks,
//! 8..15 for odd ones. The result is the 16 lanes summed left to right
//! (the order of every earlier version, bit for bit: with a tree order one
//! prompt of the bundled demo model jumped by 1e-2 in its logits, a discrete
//! near-tie flipping), plus a scalar accumulator of
//! per-block offsets (the m·s term of Q4_1/Q5_1, fused-multiply-added block
//! by block). This logical shape does not depend on the hardware vector
//! width, so AVX2, AVX-512, NEON and the scalar reference return
//! bit-identical results. The SIMD path widens the f16 scales by table
//! (simd.widen): the vector pipes are the bottleneck, loads are not.
//!
//! A type file `T` provides `quads(wb, ab) I32x8` (SIMD), `quadsScalar(wb, ab)
//! [8]i32`, `scale(wb, ab) [2]f16` (d_w, d_a), and optionally
//! `offset(wb, ab) [2]f16` (m, s); `dot` and `dotScalar` here run the loop.
const std = @import("std");
const builtin = @import("builtin");
const simd = @import("simd.zig");

pub const block_elems = 32;
pub const quad_lanes = 8;

pub const I8x32 = @Vector(32, i8);
pub const U8x32 = @Vector(32, u8);
pub const I32x8 = @Vector(8, i32);
const F32x8 = @Vector(8, f32);

const x86 = builtin.cpu.arch == .x86_64;
const has_avx2 = x86 and std.Target.x86.featureSetHas(builtin.cpu.features, .avx2);
const has_vnni = x86 and std.Target.x86.featureSetHasAll(builtin.cpu.features, .{ .avx512vnni, .avx512vl });

extern fn @"llvm.x86.avx2.psign.b"(a: I8x32, b: I8x32) I8x32;
extern fn @"llvm.x86.avx2.pmadd.ub.sw"(a: U8x32, b: I8x32) @Vector(16, i16);
extern fn @"llvm.x86.avx2.pmadd.wd"(a: @Vector(16, i16), b: @Vector(16, i16)) I32x8;
extern fn @"llvm.x86.avx512.vpdpbusd.256"(acc: I32x8, a: I32x8, b: I32x8) I32x8;

fn interleave(comptime n: usize, comptime stride: usize, comptime off: usize) [n]i32 {
    var m: [n]i32 = undefined;
    for (&m, 0..) |*v, i| v.* = @intCast(stride * i + off);
    return m;
}

/// Quad sums of `w · a` for weights 0..127 (as bytes) and activations −127..127.
pub inline fn quadsUnsigned(w: U8x32, a: I8x32) I32x8 {
    if (has_vnni) return @"llvm.x86.avx512.vpdpbusd.256"(@splat(0), @bitCast(w), @bitCast(a));
    if (has_avx2) return @"llvm.x86.avx2.pmadd.wd"(@"llvm.x86.avx2.pmadd.ub.sw"(w, a), @splat(1));
    return quadsPortable(@as(@Vector(32, i32), w), a);
}

/// Quad sums of `(u − off) · a` for weights u (bytes, u − off in −128..127)
/// and activations −127..127. With VNNI: Σ u·a + Σ off·(−a), two `vpdpbusd`
/// and no sign juggling; otherwise through `quadsSigned`.
pub inline fn quadsOffset(u: U8x32, a: I8x32, comptime off: u8) I32x8 {
    if (has_vnni) {
        const neg = @as(I8x32, @splat(0)) -% a;
        const ua = @"llvm.x86.avx512.vpdpbusd.256"(@splat(0), @bitCast(u), @bitCast(a));
        return @"llvm.x86.avx512.vpdpbusd.256"(ua, @bitCast(@as(U8x32, @splat(off))), @bitCast(neg));
    }
    return quadsSigned(@as(I8x32, @bitCast(u)) -% @as(I8x32, @splat(@bitCast(off))), a);
}

/// Quad sums of `w · a` for signed weights −128..127 and activations −127..127
/// (|w| times a with w's sign: the unsigned-by-signed products stay exact).
pub inline fn quadsSigned(w: I8x32, a: I8x32) I32x8 {
    if (has_avx2) return quadsUnsigned(@bitCast(@"llvm.x86.avx2.psign.b"(w, w)), @"llvm.x86.avx2.psign.b"(a, w));
    return quadsPortable(@as(@Vector(32, i32), w), a);
}

inline fn quadsPortable(w: @Vector(32, i32), a: I8x32) I32x8 {
    const p = w * @as(@Vector(32, i32), a);
    const pairs = @shuffle(i32, p, undefined, interleave(16, 2, 0)) + @shuffle(i32, p, undefined, interleave(16, 2, 1));
    return @shuffle(i32, pairs, undefined, interleave(8, 2, 0)) + @shuffle(i32, pairs, undefined, interleave(8, 2, 1));
}

/// Scalar twin of the quad sums, for any weight and activation bytes.
pub fn quadsScalar(w: *const [block_elems]i8, a: *const [block_elems]i8) [quad_lanes]i32 {
    var s: [quad_lanes]i32 = @splat(0);
    for (&s, 0..) |*v, l| {
        for (0..4) |k| v.* += @as(i32, w[4 * l + k]) * a[4 * l + k];
    }
    return s;
}

/// Adds block i to the 8 accumulator lanes `acc` (lanes 0..7 of the logical
/// 16 for an even i, 8..15 for an odd one) and its offset to `off`. The scale
/// is one f32 product per block, so the vector work is one conversion and
/// one fused multiply-add of 8 lanes: no shuffles to build pair vectors.
inline fn blockStep(comptime T: type, wb: *const T.Block, ab: *const T.Activation, acc: *F32x8, off: *f32) void {
    const q = T.quads(wb, ab);
    const sc = T.scale(wb, ab);
    const s = simd.widen(sc[0]) * simd.widen(sc[1]);
    acc.* = @mulAdd(F32x8, @floatFromInt(q), @splat(s), acc.*);
    if (@hasDecl(T, "offset")) {
        const o = T.offset(wb, ab);
        off.* = @mulAdd(f32, simd.widen(o[0]), simd.widen(o[1]), off.*);
    }
}

/// The SIMD dot product of a row of `T.Block` with `T.Activation` blocks.
pub inline fn dot(comptime T: type, w: []const T.Block, a: []const T.Activation) f32 {
    return dotN(T, 1, w, &.{a})[0];
}

/// `dot` of one row with each of `n` tokens' activation rows `a`, block by
/// block for all tokens (the compiler keeps one load and unpacking of each
/// weight block for them). Per token the operations and their order are
/// those of `dot`, so result t has its bits for `a[t]`.
pub inline fn dotN(comptime T: type, comptime n: usize, w: []const T.Block, a: *const [n][]const T.Activation) [n]f32 {
    inline for (a) |row| std.debug.assert(row.len == w.len);
    var acc: [n][2]F32x8 = @splat(.{ @splat(0), @splat(0) });
    var off: [n]f32 = @splat(0);
    var i: usize = 0;
    while (i + 2 <= w.len) : (i += 2) {
        inline for (&acc, &off, a) |*t, *o, row| {
            blockStep(T, &w[i], &row[i], &t[0], o);
            blockStep(T, &w[i + 1], &row[i + 1], &t[1], o);
        }
    }
    if (i < w.len) {
        inline for (&acc, &off, a) |*t, *o, row| blockStep(T, &w[i], &row[i], &t[0], o);
    }
    var r: [n]f32 = undefined;
    inline for (&r, acc, off) |*v, t, o| {
        const lanes: [16]f32 = std.simd.join(t[0], t[1]);
        var sum: f32 = 0;
        inline for (lanes) |x| sum += x;
        v.* = sum + o;
    }
    return r;
}

/// Scalar twin of `dot`: the same operations in the same order, one lane at a time.
pub fn dotScalar(comptime T: type, w: []const T.Block, a: []const T.Activation) f32 {
    std.debug.assert(w.len == a.len);
    var acc: [16]f32 = @splat(0);
    var off: f32 = 0;
    var i: usize = 0;
    while (i < w.len) : (i += 2) {
        for (0..2) |k| {
            const present = i + k < w.len;
            const q: [quad_lanes]i32 = if (present) T.quadsScalar(&w[i + k], &a[i + k]) else @splat(0);
            const sc: [2]f16 = if (present) T.scale(&w[i + k], &a[i + k]) else .{ 0, 0 };
            const s = @as(f32, sc[0]) * @as(f32, sc[1]);
            for (0..quad_lanes) |l| acc[8 * k + l] = @mulAdd(f32, @floatFromInt(q[l]), s, acc[8 * k + l]);
            if (@hasDecl(T, "offset") and present) {
                const o = T.offset(&w[i + k], &a[i + k]);
                off = @mulAdd(f32, o[0], o[1], off);
            }
        }
    }
    var sum: f32 = 0;
    for (acc) |x| sum += x;
    return sum + off;
}

/// Largest |x| of a block and the value that has it (first one on ties),
/// as GGML's symmetric quantizers pick their scale.
pub fn absMax(x: *const [block_elems]f32) struct { abs: f32, value: f32 } {
    var amax: f32 = 0;
    var max: f32 = 0;
    for (x) |v| {
        if (amax < @abs(v)) {
            amax = @abs(v);
            max = v;
        }
    }
    return .{ .abs = amax, .value = max };
}

/// Smallest and largest value of a block (GGML's asymmetric quantizers).
pub fn minMax(x: *const [block_elems]f32) struct { min: f32, max: f32 } {
    var lo: f32 = std.math.floatMax(f32);
    var hi: f32 = -std.math.floatMax(f32);
    for (x) |v| {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
    }
    return .{ .min = lo, .max = hi };
}

/// `1/d`, or 0 when `d` is 0 (an all-zero block).
pub inline fn inverse(d: f32) f32 {
    return if (d != 0) 1.0 / d else 0;
}

/// Truncates toward zero like a C cast of `v` to an integer, clamped to [lo, hi].
pub inline fn truncClamp(v: f32, lo: i32, hi: i32) i32 {
    const c = std.math.clamp(v, @as(f32, @floatFromInt(lo)), @as(f32, @floatFromInt(hi)));
    return @intFromFloat(c);
}

// ---------------------------------------------------------------------------
// Test helpers shared by the per-type tests.

pub const testing = struct {
    /// Fills `x` with a reproducible mix of scales, signs and exact zeros.
    pub fn fill(x: []f32, seed: u64) void {
        var prng = std.Random.DefaultPrng.init(seed);
        const r = prng.random();
        for (x, 0..) |*v, i| {
            const scale: f32 = if (i % 97 < 3) 8 else 1;
            v.* = if (i % 61 == 5) 0 else (r.float(f32) * 2 - 1) * scale;
        }
    }

    /// Σ w·x in f64 and Σ|w·x| for an error bound.
    pub fn reference(w: []const f32, x: []const f32) struct { dot: f64, mag: f64 } {
        var s: f64 = 0;
        var m: f64 = 0;
        for (w, x) |a, b| {
            s += @as(f64, a) * b;
            m += @abs(@as(f64, a) * b);
        }
        return .{ .dot = s, .mag = m };
    }

    /// RMS of the difference of two rows.
    pub fn rmse(a: []const f32, b: []const f32) f64 {
        var s: f64 = 0;
        for (a, b) |x, y| s += (@as(f64, x) - y) * (@as(f64, x) - y);
        return @sqrt(s / @as(f64, @floatFromInt(@max(a.len, 1))));
    }

    /// Runs the per-type contract checks for a weight type `K` whose
    /// activation module is `A`: SIMD == scalar bit for bit; the quantized dot
    /// within `rel_budget`·Σ|w·x| of the f32 dot of the original rows; the
    /// round-trip RMSE below `rmse_budget` (inputs in [-1, 1] mostly).
    pub fn checkType(comptime K: type, comptime A: type, rel_budget: f64, rmse_budget: f64) !void {
        const alloc = std.testing.allocator;
        for ([_]usize{ 32, 64, 96, 1024, 4096 + 32 }) |n| {
            const nb = n / K.block_elems;
            const w = try alloc.alloc(f32, n);
            defer alloc.free(w);
            const x = try alloc.alloc(f32, n);
            defer alloc.free(x);
            const back = try alloc.alloc(f32, n);
            defer alloc.free(back);
            const wq = try alloc.alloc(K.Block, nb);
            defer alloc.free(wq);
            const xq = try alloc.alloc(A.Block, n / A.block_elems);
            defer alloc.free(xq);
            fill(w, n);
            fill(x, n + 1);
            K.quantize(w, wq);
            A.quantize(x, xq);
            K.dequantize(wq, back);
            try std.testing.expect(rmse(w, back) < rmse_budget);
            const fast = K.dot(wq, xq);
            const slow = K.dotGeneric(wq, xq);
            try std.testing.expectEqual(@as(u32, @bitCast(slow)), @as(u32, @bitCast(fast)));
            const ref = reference(w, x);
            try std.testing.expect(@abs(fast - ref.dot) <= rel_budget * ref.mag + 1e-6);
        }
        // An all-zero row quantizes to zeros and dots to exactly 0.
        var zeros: [64]f32 = @splat(0);
        var zq: [64 / K.block_elems]K.Block = undefined;
        var xq: [64 / A.block_elems]A.Block = undefined;
        K.quantize(&zeros, &zq);
        var ones: [64]f32 = @splat(1);
        A.quantize(&ones, &xq);
        try std.testing.expectEqual(@as(f32, 0), K.dot(&zq, &xq));
        K.dequantize(&zq, &zeros);
        for (zeros) |v| try std.testing.expectEqual(@as(f32, 0), v);
    }
};

test "quad sums: SIMD equals scalar on extreme bytes" {
    var w: [32]i8 = undefined;
    var a: [32]i8 = undefined;
    var u: [32]i8 = undefined;
    for (&w, &a, &u, 0..) |*p, *q, *r, i| {
        p.* = if (i % 3 == 0) -128 else @intCast(@as(i32, @intCast(i * 7 % 255)) - 127);
        q.* = if (i % 5 == 0) -127 else 127;
        r.* = @intCast(i * 5 % 128);
    }
    const v: [8]i32 = quadsSigned(w, a);
    try std.testing.expectEqual(quadsScalar(&w, &a), v);
    const uv: [8]i32 = quadsUnsigned(@bitCast(u), a);
    try std.testing.expectEqual(quadsScalar(&u, &a), uv);
    var u16s: [32]i8 = undefined;
    for (&u16s, u) |*x, b| x.* = b - 16;
    const ov: [8]i32 = quadsOffset(@bitCast(u), a, 16);
    try std.testing.expectEqual(quadsScalar(&u16s, &a), ov);
}
