//! The shared shape of every 32-element block dot product (Q4_0, Q4_1, Q5_0,
//! Q5_1, Q8_0 weights against Q8_0/Q8_1 activations).
//!
//! Per block the weight values (unpacked to i8) are multiplied with the
//! activation bytes and summed in exact integers as 16 pair sums,
//! lane l = w[2l]·a[2l] + w[2l+1]·a[2l+1] (what `pmaddwd` computes). The pair
//! sums, converted to f32, are fused-multiply-added with the block's scale
//! (d_w·d_a, one f32 rounding) into one of two 16-lane accumulators, even
//! blocks into the first and odd blocks into the second. The result is
//! (acc0 + acc1) summed lane by lane left to right, plus a scalar
//! accumulator of per-block offsets (the m·s term of Q4_1/Q5_1, added block
//! by block with fused multiply-add). This logical shape does not depend on
//! the hardware vector width, so AVX2, AVX-512, NEON and the scalar
//! reference return bit-identical results.
const std = @import("std");

pub const block_elems = 32;
pub const lanes = 16;

pub const I8x32 = @Vector(32, i8);
pub const I32x16 = @Vector(16, i32);
pub const F32x16 = @Vector(16, f32);

const even: [lanes]i32 = blk: {
    var m: [lanes]i32 = undefined;
    for (&m, 0..) |*v, i| v.* = 2 * i;
    break :blk m;
};
const odd: [lanes]i32 = blk: {
    var m: [lanes]i32 = undefined;
    for (&m, 0..) |*v, i| v.* = 2 * i + 1;
    break :blk m;
};

/// The 16 exact pair sums of `w · a` (both 32 signed bytes).
pub inline fn pairSums(w: I8x32, a: I8x32) I32x16 {
    const wi: @Vector(32, i32) = w;
    const ai: @Vector(32, i32) = a;
    const p = wi * ai;
    return @shuffle(i32, p, undefined, even) + @shuffle(i32, p, undefined, odd);
}

/// Scalar twin of `pairSums`.
pub fn pairSumsScalar(w: *const [block_elems]i8, a: *const [block_elems]i8) [lanes]i32 {
    var s: [lanes]i32 = undefined;
    for (&s, 0..) |*v, l| v.* = @as(i32, w[2 * l]) * a[2 * l] + @as(i32, w[2 * l + 1]) * a[2 * l + 1];
    return s;
}

/// The SIMD accumulator.
pub const Acc = struct {
    v: [2]F32x16 = .{ @splat(0), @splat(0) },
    offset: f32 = 0,

    pub inline fn add(self: *Acc, block: usize, sums: I32x16, scale: f32) void {
        const k = block & 1;
        self.v[k] = @mulAdd(F32x16, @floatFromInt(sums), @splat(scale), self.v[k]);
    }

    pub inline fn addOffset(self: *Acc, m: f32, s: f32) void {
        self.offset = @mulAdd(f32, m, s, self.offset);
    }

    pub inline fn finish(self: Acc) f32 {
        const arr: [lanes]f32 = self.v[0] + self.v[1];
        var s: f32 = 0;
        inline for (arr) |x| s += x;
        return s + self.offset;
    }
};

/// Scalar twin of `Acc`.
pub const AccScalar = struct {
    v: [2][lanes]f32 = .{ @splat(0), @splat(0) },
    offset: f32 = 0,

    pub fn add(self: *AccScalar, block: usize, sums: [lanes]i32, scale: f32) void {
        const k = block & 1;
        for (&self.v[k], sums) |*acc, x| acc.* = @mulAdd(f32, @floatFromInt(x), scale, acc.*);
    }

    pub fn addOffset(self: *AccScalar, m: f32, s: f32) void {
        self.offset = @mulAdd(f32, m, s, self.offset);
    }

    pub fn finish(self: AccScalar) f32 {
        var s: f32 = 0;
        for (self.v[0], self.v[1]) |a, b| s += a + b;
        return s + self.offset;
    }
};

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

test "pair sums: SIMD equals scalar on extreme bytes" {
    var w: [32]i8 = undefined;
    var a: [32]i8 = undefined;
    for (&w, &a, 0..) |*p, *q, i| {
        p.* = if (i % 3 == 0) -128 else @intCast(@as(i32, @intCast(i * 7 % 255)) - 127);
        q.* = if (i % 5 == 0) -128 else 127;
    }
    const v: [lanes]i32 = pairSums(w, a);
    try std.testing.expectEqual(pairSumsScalar(&w, &a), v);
}
