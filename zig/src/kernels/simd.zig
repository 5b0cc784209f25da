//! Vector shapes shared by the kernels.
//!
//! Float kernels accumulate in a fixed *logical* shape — `acc_count` vectors
//! of `lanes` f32 — whatever the hardware width: AVX-512 holds one vector per
//! register, AVX2 two, NEON four. With fused multiply-add everywhere and a
//! fixed final reduction order, every target (and the scalar reference)
//! produces bit-identical results. That is what makes generated tokens
//! independent of the CPU variant and of the thread count.
const std = @import("std");

pub const lanes = 16;
pub const acc_count = 4;
/// Elements consumed per step of the main loop.
pub const step = lanes * acc_count;

pub const F32x = @Vector(lanes, f32);
pub const F16x = @Vector(lanes, f16);

/// Loads `lanes` f32 from `p` (no alignment needed).
pub inline fn loadF32(p: []const f32) F32x {
    return p[0..lanes].*;
}

/// Loads `lanes` IEEE half floats from `p` and widens them to f32.
pub inline fn loadF16(p: []const f16) F32x {
    const h: F16x = p[0..lanes].*;
    return @floatCast(h);
}

/// Sums the accumulators in the fixed order: first the `acc_count` vectors
/// pairwise-left-to-right, then the lanes left to right.
pub inline fn finish(acc: [acc_count]F32x) f32 {
    var v = acc[0];
    inline for (1..acc_count) |i| v += acc[i];
    const arr: [lanes]f32 = v;
    var s: f32 = 0;
    inline for (arr) |x| s += x;
    return s;
}

/// Scalar twin of `finish` for the generic kernels.
pub fn finishScalar(acc: *const [acc_count][lanes]f32) f32 {
    var v: [lanes]f32 = acc[0];
    for (1..acc_count) |i| {
        for (0..lanes) |l| v[l] += acc[i][l];
    }
    var s: f32 = 0;
    for (v) |x| s += x;
    return s;
}

/// Sums 8 lanes as a tree: (v[i] + v[i+4]), then (s[i] + s[i+2]), then the
/// last two; three dependent adds instead of seven at the end of each row.
pub inline fn sum8(v: @Vector(8, f32)) f32 {
    const s4 = @shuffle(f32, v, undefined, @Vector(4, i32){ 0, 1, 2, 3 }) + @shuffle(f32, v, undefined, @Vector(4, i32){ 4, 5, 6, 7 });
    const s2 = @shuffle(f32, s4, undefined, @Vector(2, i32){ 0, 1 }) + @shuffle(f32, s4, undefined, @Vector(2, i32){ 2, 3 });
    return s2[0] + s2[1];
}

/// Scalar twin of `sum8`.
pub fn sum8Scalar(v: *const [8]f32) f32 {
    var s4: [4]f32 = undefined;
    for (&s4, 0..) |*x, i| x.* = v[i] + v[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

/// Every f16 bit pattern widened to f32 (256 KiB, built at compile time).
/// A table load per block scale keeps the conversion off the vector pipes,
/// which the dot products saturate; the values are the exact widenings.
const f16_table: [1 << 16]f32 = blk: {
    @setEvalBranchQuota(1 << 20);
    var t: [1 << 16]f32 = undefined;
    for (&t, 0..) |*v, i| v.* = @floatCast(@as(f16, @bitCast(@as(u16, @intCast(i)))));
    break :blk t;
};

/// `h` widened to f32 by table lookup (same value as `@as(f32, h)`).
pub inline fn widen(h: f16) f32 {
    return f16_table[@as(u16, @bitCast(h))];
}

test "widen equals the hardware conversion for every finite f16 and keeps NaN a NaN" {
    for (0..1 << 16) |i| {
        const h: f16 = @bitCast(@as(u16, @intCast(i)));
        if (std.math.isNan(h)) {
            try std.testing.expect(std.math.isNan(widen(h)));
        } else {
            try std.testing.expectEqual(@as(u32, @bitCast(@as(f32, h))), @as(u32, @bitCast(widen(h))));
        }
    }
}
