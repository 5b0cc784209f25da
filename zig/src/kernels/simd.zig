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
