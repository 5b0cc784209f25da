//! What the K-quant files (q2_k … q6_k) share: the integer block dot against
//! Q8_K activations, rounding, the scale searches of the quantizers, and the
//! 12-byte packing of eight 6-bit scale/min pairs used by Q4_K and Q5_K.
//!
//! Every K-quant dot product works the same way: a super-block of 256 weights
//! is unpacked to small signed integers `q[256]` with one integer scale per 16
//! weights (types with 32-weight sub-blocks repeat their scale twice), so
//!
//!   Σ_i w_i a_i = d_w d_a Σ_j sc_j Σ_{i in j} q_i a_i  (− d_min d_a Σ_j m_j bsum_j)
//!
//! The inner sums are exact integers, kept in 8 lanes per block; the float
//! part (see "Dot products" below) is the same per-lane fused multiply-add in
//! the scalar and SIMD paths, so both return the same bits.
const std = @import("std");
const q8_k = @import("q8_k.zig");

pub const qk = 256;

/// Round to nearest, ties to even (for |x| < 2^22), like `lrintf`.
/// Saturates at ±2^22 and maps NaN to 0, so no input reaches undefined behaviour.
pub inline fn nearestInt(x: f32) i32 {
    const magic: f32 = 12582912.0; // 1.5 * 2^23
    const limit: f32 = 4194303.0;
    if (!(@abs(x) <= limit)) return if (x > 0) 4194303 else if (x < 0) -4194303 else 0;
    return @intFromFloat((x + magic) - magic);
}

// ---------------------------------------------------------------------------
// Dot products
//
// The logical shape, the same on every target: a block's integer sum is kept
// as 8 exact i32 lanes, lane l holding the bytes i with (i / 4) mod 8 = l
// (what one 256-bit `pmaddwd` leaves per 32 bytes; NEON alternates two 4-lane
// halves). Each block then adds
// `lanes · (d_w·d_a)` into 8 f32 accumulators with one fused multiply-add per
// lane, the sub-block minimums likewise into a second set, and only the row's
// end sums the lanes (as a tree, simd.sum8). The scalar twins below compute the same
// lanes one at a time, so SIMD and scalar return the same bits.

pub const lanes = 8;
pub const I32xL = @Vector(lanes, i32);
const F32xL = @Vector(lanes, f32);

const builtin = @import("builtin");
const x86 = builtin.cpu.arch == .x86_64;
const has_vnni256 = x86 and std.Target.x86.featureSetHasAll(builtin.cpu.features, .{ .avx512vnni, .avx512vl });
const has_avx2 = x86 and std.Target.x86.featureSetHas(builtin.cpu.features, .avx2);

// x86 multiply-adds (LLVM intrinsics): u8×i8 pairs summed to i16 (the sums
// here never saturate: |u| ≤ 63, |a| ≤ 128), then i16×i16 pairs summed to i32
// (`vpdpwssd` also adds them to an accumulator).
extern fn @"llvm.x86.avx2.pmadd.ub.sw"(@Vector(32, i8), @Vector(32, i8)) @Vector(16, i16);
extern fn @"llvm.x86.avx2.pmadd.wd"(@Vector(16, i16), @Vector(16, i16)) @Vector(8, i32);
extern fn @"llvm.x86.avx512.vpdpwssd.256"(@Vector(8, i32), @Vector(8, i32), @Vector(8, i32)) @Vector(8, i32);

/// Bytes per step: 32 on x86 (AVX2 and AVX-512 alike: 512-bit steps measured
/// slower on Zen 4, which splits them in two anyway), 16 elsewhere (NEON).
/// With one scale per 32 weights a 32-byte step has one scale: a broadcast
/// instead of a shuffle.
const step_bytes: usize = if (has_avx2) 32 else 16;

fn Pairs(comptime sb: usize) type {
    return @Vector(sb / 2, i16);
}
fn Quads(comptime sb: usize) type {
    return @Vector(sb / 4, i32);
}

fn evenOdd(comptime n: usize, comptime odd: bool) @Vector(n, i32) {
    @setEvalBranchQuota(10_000);
    var m: @Vector(n, i32) = undefined;
    for (0..n) |i| m[i] = @intCast(2 * i + @intFromBool(odd));
    return m;
}

/// Pairwise products summed: lane i = u[2i]·a[2i] + u[2i+1]·a[2i+1].
inline fn pairs(comptime sb: usize, u: @Vector(sb, u8), a: @Vector(sb, i8)) Pairs(sb) {
    if (sb == 32 and has_avx2) return @"llvm.x86.avx2.pmadd.ub.sw"(@bitCast(u), a);
    const p = @as(@Vector(sb, i16), u) * @as(@Vector(sb, i16), a);
    return @shuffle(i16, p, undefined, evenOdd(sb / 2, false)) + @shuffle(i16, p, undefined, evenOdd(sb / 2, true));
}

/// `acc` plus the pairwise products of i16 summed to i32: lane i += p[2i]·s[2i] + p[2i+1]·s[2i+1].
inline fn addPairs32(comptime sb: usize, acc: Quads(sb), p: Pairs(sb), s: Pairs(sb)) Quads(sb) {
    if (sb == 32 and has_vnni256) return @"llvm.x86.avx512.vpdpwssd.256"(acc, @bitCast(p), @bitCast(s));
    if (sb == 32 and has_avx2) return acc + @"llvm.x86.avx2.pmadd.wd"(p, s);
    const h = sb / 4;
    const pe: @Vector(h, i32) = @shuffle(i16, p, undefined, evenOdd(h, false));
    const po: @Vector(h, i32) = @shuffle(i16, p, undefined, evenOdd(h, true));
    const se: @Vector(h, i32) = @shuffle(i16, s, undefined, evenOdd(h, false));
    const so: @Vector(h, i32) = @shuffle(i16, s, undefined, evenOdd(h, true));
    return acc + pe * se + po * so;
}

/// 8 lanes of pairwise i16 products: lane l = x[2l]·y[2l] + x[2l+1]·y[2l+1] (one `pmaddwd`).
pub inline fn pairLanes(x: @Vector(16, i16), y: @Vector(16, i16)) I32xL {
    if (has_avx2) return @"llvm.x86.avx2.pmadd.wd"(x, y);
    const xe: I32xL = @shuffle(i16, x, undefined, evenOdd(lanes, false));
    const xo: I32xL = @shuffle(i16, x, undefined, evenOdd(lanes, true));
    const ye: I32xL = @shuffle(i16, y, undefined, evenOdd(lanes, false));
    const yo: I32xL = @shuffle(i16, y, undefined, evenOdd(lanes, true));
    return xe * ye + xo * yo;
}

/// Scalar twin of `pairLanes`.
pub fn pairLanesScalar(x: *const [16]i16, y: *const [16]i16) [lanes]i32 {
    var r: [lanes]i32 = undefined;
    for (&r, 0..) |*v, l| v.* = @as(i32, x[2 * l]) * y[2 * l] + @as(i32, x[2 * l + 1]) * y[2 * l + 1];
    return r;
}

pub const U8x32 = @Vector(32, u8);

/// The `sb` unsigned weights of step k, from 32-weight chunks.
inline fn stepWeights(comptime sb: usize, src: anytype, comptime chunk: anytype, comptime k: usize) @Vector(sb, u8) {
    if (sb == 32) return chunk(src, k);
    comptime var m: [sb]i32 = undefined;
    inline for (0..sb) |i| m[i] = (k % 2) * sb + i;
    return @shuffle(u8, chunk(src, k / 2), undefined, m);
}

/// The i16 scale of each pair lane of step k (lane i covers weights k·sb + 2i,
/// +1), from `per`-weight scales.
inline fn stepScales(comptime sb: usize, comptime per: usize, sc: anytype, comptime k: usize) Pairs(sb) {
    if (per == 32 and sb == 32) {
        // One scale for the whole step: both i16 halves of one u32, broadcast.
        const dup = @shuffle(i16, sc, undefined, @Vector(16, i32){ 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7 });
        const words: @Vector(lanes, u32) = @bitCast(dup);
        return @bitCast(@as(@Vector(lanes, u32), @splat(words[k])));
    }
    comptime var m: [sb / 2]i32 = undefined;
    inline for (0..sb / 2) |i| m[i] = @intCast((k * sb + 2 * i) / per);
    return @shuffle(i16, sc, undefined, m);
}

/// The step accumulators as the 8 logical lanes: NEON's two 4-lane
/// accumulators (even and odd steps) are laid side by side.
inline fn foldLanes(comptime sb: usize, comptime n: usize, acc: [n]Quads(sb)) I32xL {
    if (sb == 32) return acc[0];
    return std.simd.join(acc[0], acc[1]);
}

/// SIMD: lane l = Σ_{i: (i/4) mod 8 = l} sc[i/per]·u[i]·a[i] for unsigned
/// weights u ≤ 63 and scales per 16 or 32 weights, for each of `n` tokens'
/// activations `a`. Exact. `chunk(src, c)` gives weights 32c … 32c+31, so
/// they stay in registers: each step's weights and scales are unpacked once
/// and multiplied with every token's bytes.
inline fn scaledLanesUnsigned(comptime n: usize, comptime per: usize, src: anytype, comptime chunk: anytype, a: *const [n]*const [qk]i8, sc: @Vector(qk / per, i16)) [n]I32xL {
    @setEvalBranchQuota(10_000);
    const sb = step_bytes;
    const m = if (sb / 4 >= lanes) 1 else lanes / (sb / 4);
    var acc: [n][m]Quads(sb) = @splat(@splat(@splat(0)));
    inline for (0..qk / sb) |k| {
        const u = stepWeights(sb, src, chunk, k);
        const s = stepScales(sb, per, sc, k);
        inline for (&acc, a) |*t, at| {
            const av: @Vector(sb, i8) = at[k * sb ..][0..sb].*;
            t[k % m] = addPairs32(sb, t[k % m], pairs(sb, u, av), s);
        }
    }
    var r: [n]I32xL = undefined;
    inline for (&r, acc) |*v, t| v.* = foldLanes(sb, m, t);
    return r;
}

/// A K-quant type's dot products, built on `dotRows` (arguments as there):
/// `dotGeneric`, the scalar reference; `dot`, the SIMD version with the same
/// bits; `dotN`, one row with `n` tokens' activations, each weight block
/// unpacked once for all of them (result t has the bits of `dot(w, a[t])`).
pub fn Dots(
    comptime B: type,
    comptime offset: i32,
    comptime unpackGeneric: fn (*const B, *[qk]i8) void,
    comptime chunk: anytype,
    comptime scalesOf: anytype,
) type {
    return struct {
        pub fn dotGeneric(w: []const B, a: []const q8_k.Block) f32 {
            return dotRows(false, 1, B, offset, unpackGeneric, chunk, scalesOf, w, &.{a})[0];
        }

        pub fn dot(w: []const B, a: []const q8_k.Block) f32 {
            return dotRows(true, 1, B, offset, unpackGeneric, chunk, scalesOf, w, &.{a})[0];
        }

        pub fn dotN(comptime n: usize, w: []const B, a: *const [n][]const q8_k.Block) [n]f32 {
            return dotRows(true, n, B, offset, unpackGeneric, chunk, scalesOf, w, a);
        }
    };
}

/// The row dot of a K-quant block type for each of `n` tokens: per token the
/// same operations in the same order whatever `n` (integer lanes, then one
/// fused multiply-add per block). `offset` is what `chunk` adds to the signed
/// weights (see `blockLanes`); `scalesOf(block)` gives the block's sub-block
/// scales as `.sc` and, for the types with mins (Q2_K, Q4_K, Q5_K: weights
/// `d·sc·q − dmin·m`), the mins as `.m`.
pub inline fn dotRows(
    comptime simd: bool,
    comptime n: usize,
    comptime B: type,
    comptime offset: i32,
    comptime unpackGeneric: fn (*const B, *[qk]i8) void,
    comptime chunk: anytype,
    comptime scalesOf: anytype,
    w: []const B,
    a: *const [n][]const q8_k.Block,
) [n]f32 {
    checkRows(n, a, w.len);
    const with_mins = @hasField(@typeInfo(@TypeOf(scalesOf)).@"fn".return_type.?, "m");
    var acc: [n]Acc(simd) = @splat(.{});
    var mins: [n]Acc(simd) = @splat(.{});
    for (w, 0..) |*b, i| {
        const ys = column(n, a, i);
        const s = scalesOf(b);
        const ls = blockLanes(simd, n, offset, B, unpackGeneric, chunk, b, &ys, &s.sc);
        inline for (&acc, ls, ys) |*t, l, y| t.add(l, widen(simd, b.d) * y.d);
        if (with_mins) inline for (&mins, ys) |*t, y| t.add(minLanes(simd, &s.m, y), widen(simd, b.dmin) * y.d);
    }
    var r: [n]f32 = undefined;
    inline for (&r, acc, mins) |*v, t, u| v.* = if (with_mins) t.sum() - u.sum() else t.sum();
    return r;
}

/// The integer lanes of one block for each of `n` tokens' activation blocks
/// `a`, with one scale per `per` = 256 / sc.len weights (16 or 32). The
/// values are q = u − `offset`: `chunk` (SIMD) gives u, 32 at a time;
/// `unpackSigned` (scalar reference) gives q. Lane l = Σ_{i in lane l}
/// sc[i/per]·u[i]·a[i] − offset·(sc[2l]·bsums[2l] + sc[2l+1]·bsums[2l+1])
/// (offsets only with per = 16): summed over the lanes, Σ_j sc[j] Σ_{i in j}
/// q[i]·a[i]. Exact integers, so a token's lanes do not depend on `n`.
pub inline fn blockLanes(
    comptime simd: bool,
    comptime n: usize,
    comptime offset: i32,
    comptime B: type,
    comptime unpackSigned: fn (*const B, *[qk]i8) void,
    comptime chunk: anytype,
    b: *const B,
    a: *const [n]*const q8_k.Block,
    sc: anytype,
) [n][lanes]i32 {
    const per = qk / sc.len;
    comptime std.debug.assert((per == 16 or per == 32) and (offset == 0 or per == 16));
    var r: [n][lanes]i32 = undefined;
    if (simd) {
        var qs: [n]*const [qk]i8 = undefined;
        inline for (&qs, a) |*q, at| q.* = &at.qs;
        const s = scaledLanesUnsigned(n, per, b, chunk, &qs, sc.*);
        inline for (&r, s, a) |*v, st, at| {
            v.* = if (offset == 0) st else st - @as(I32xL, @splat(offset)) * pairLanes(sc.*, at.bsums);
        }
        return r;
    }
    var q: [qk]i8 = undefined;
    unpackSigned(b, &q);
    for (&r, a) |*rt, at| {
        rt.* = @splat(0);
        for (q, at.qs, 0..) |v, x, i| rt[(i / 4) % lanes] += @as(i32, sc[i / per]) * (@as(i32, v) + offset) * x;
        if (offset != 0) {
            for (rt, pairLanesScalar(sc, &at.bsums)) |*v, c| v.* -= offset * c;
        }
    }
    return r;
}

/// The minimum terms of one block: lane l = m[2l]·bsums[2l] + m[2l+1]·bsums[2l+1].
pub inline fn minLanes(comptime simd: bool, m: *const [16]i16, a: *const q8_k.Block) [lanes]i32 {
    return if (simd) pairLanes(m.*, a.bsums) else pairLanesScalar(m, &a.bsums);
}

/// Block `i` of each of the `n` tokens' activation rows.
pub inline fn column(comptime n: usize, a: *const [n][]const q8_k.Block, i: usize) [n]*const q8_k.Block {
    var r: [n]*const q8_k.Block = undefined;
    inline for (&r, a) |*p, row| p.* = &row[i];
    return r;
}

/// Asserts every token's activation row has `len` blocks (one per weight block).
pub inline fn checkRows(comptime n: usize, a: *const [n][]const q8_k.Block, len: usize) void {
    inline for (a) |row| std.debug.assert(row.len == len);
}

/// A block's f16 scale as f32: the SIMD paths look it up in a table (off the
/// vector pipes), the scalar reference converts it; the values are equal.
pub inline fn widen(comptime simd: bool, h: f16) f32 {
    return if (simd) @import("simd.zig").widen(h) else h;
}

/// 8 f32 accumulators: `add` fuses lanes·scale into each, `sum` adds them as a tree (simd.sum8).
pub fn Acc(comptime simd: bool) type {
    return struct {
        v: [lanes]f32 = @splat(0),

        pub inline fn add(self: *@This(), l: [lanes]i32, scale: f32) void {
            if (simd) {
                const iv: I32xL = l;
                const fv: F32xL = self.v;
                self.v = @mulAdd(F32xL, @floatFromInt(iv), @splat(scale), fv);
            } else {
                for (&self.v, l) |*acc, x| acc.* = @mulAdd(f32, @floatFromInt(x), scale, acc.*);
            }
        }

        pub inline fn sum(self: *const @This()) f32 {
            const vec = @import("simd.zig");
            return if (simd) vec.sum8(self.v) else vec.sum8Scalar(&self.v);
        }
    };
}

// ---------------------------------------------------------------------------
// Q4_K / Q5_K scale packing: 8 pairs (scale, min) of 6 bits in 12 bytes.
// Bytes 0..3 hold scales 0..3 (low 6 bits) and the top 2 bits of scales 4..7;
// bytes 4..7 likewise for mins; bytes 8..11 hold the low 4 bits of scale 4..7
// (low nibble) and min 4..7 (high nibble).

pub fn unpackScaleMin(p: *const [12]u8, j: usize) struct { sc: u8, m: u8 } {
    if (j < 4) return .{ .sc = p[j] & 63, .m = p[j + 4] & 63 };
    return .{
        .sc = (p[j + 4] & 0xF) | ((p[j - 4] >> 6) << 4),
        .m = (p[j + 4] >> 4) | ((p[j] >> 6) << 4),
    };
}

pub fn packScaleMin(sc: *const [8]u8, m: *const [8]u8) [12]u8 {
    var p: [12]u8 = @splat(0);
    for (0..8) |j| {
        std.debug.assert(sc[j] < 64 and m[j] < 64);
        if (j < 4) {
            p[j] = sc[j];
            p[j + 4] = m[j];
        } else {
            p[j + 4] = (sc[j] & 0xF) | ((m[j] & 0xF) << 4);
            p[j - 4] |= (sc[j] >> 4) << 6;
            p[j] |= (m[j] >> 4) << 6;
        }
    }
    return p;
}

pub const ScalesMins = struct { sc: [8]i16, m: [16]i16 };

/// Unpacks the 8 scales (one per 32 weights) and the 8 mins, each min
/// repeated for both 16-weight halves (what `unpackScaleMin` gives), in
/// 64-bit integer arithmetic: one byte per value, all at once.
pub inline fn scalesMins(p: *const [12]u8) ScalesMins {
    const lo = std.mem.readInt(u64, p[0..8], .little);
    const hi: u64 = std.mem.readInt(u32, p[8..12], .little);
    const six: u64 = 0x3f3f3f3f;
    const four: u64 = 0x0f0f0f0f;
    const two: u64 = 0x03030303;
    const sc = (lo & six) | ((hi & four) | ((lo >> 6) & two) << 4) << 32;
    const m = ((lo >> 32) & six) | (((hi >> 4) & four) | ((lo >> 38) & two) << 4) << 32;
    const scb: @Vector(8, u8) = @bitCast(sc);
    const mb: @Vector(8, u8) = @bitCast(m);
    const dup = @Vector(16, i32){ 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7 };
    return .{
        .sc = @as(@Vector(8, i16), scb),
        .m = @as(@Vector(16, i16), @shuffle(u8, mb, undefined, dup)),
    };
}

// ---------------------------------------------------------------------------
// Scale searches. Each fits one sub-block: it tries a sweep of candidate
// inverse scales, rounds x with each, then solves the weighted least-squares
// problem for the scale (and offset) given those integers, and keeps the
// candidate with the smallest weighted squared error.

/// Affine fit x ≈ scale·L − offset with L in 0..nmax, scale ≥ 0, offset ≥ 0
/// (the lowest representable value is never above 0). Writes L.
pub fn fitAffine(x: []const f32, w: []const f32, nmax: u8, rmin: f32, rdelta: f32, nstep: usize, l_out: []u8) struct { scale: f32, offset: f32 } {
    std.debug.assert(x.len == w.len and x.len == l_out.len and x.len <= 32);
    const lo: f32 = @min(0, std.mem.min(f32, x));
    const hi = std.mem.max(f32, x);
    if (hi <= lo) {
        @memset(l_out, 0);
        return .{ .scale = 0, .offset = -lo };
    }
    const nm: f32 = @floatFromInt(nmax);
    var best_scale = (hi - lo) / nm;
    var best_min = lo;
    var best_err = std.math.inf(f32);
    var buf: [32]u8 = undefined;
    const l = buf[0..x.len];
    // Candidate 0 is plain min/max rounding; then the sweep.
    for (0..nstep + 2) |step| {
        const iscale = if (step == 0) nm / (hi - lo) else (rmin + rdelta * @as(f32, @floatFromInt(step - 1)) + nm) / (hi - lo);
        var sw: f32 = 0;
        var sl: f32 = 0;
        var sl2: f32 = 0;
        var sx: f32 = 0;
        var sxl: f32 = 0;
        for (x, w, l) |xi, wi, *li| {
            const v = std.math.clamp(nearestInt(iscale * (xi - lo)), 0, nmax);
            li.* = @intCast(v);
            const lf: f32 = @floatFromInt(v);
            sw += wi;
            sl += wi * lf;
            sl2 += wi * lf * lf;
            sx += wi * xi;
            sxl += wi * xi * lf;
        }
        var scale: f32 = undefined;
        var min: f32 = undefined;
        const det = sw * sl2 - sl * sl;
        if (step == 0) {
            scale = 1 / iscale;
            min = lo;
        } else {
            if (det <= 0) continue;
            scale = (sw * sxl - sx * sl) / det;
            min = (sl2 * sx - sl * sxl) / det;
            if (min > 0) {
                min = 0;
                if (sl2 <= 0) continue;
                scale = sxl / sl2;
            }
        }
        var err: f32 = 0;
        for (x, w, l) |xi, wi, li| {
            const diff = scale * @as(f32, @floatFromInt(li)) + min - xi;
            err += wi * diff * diff;
        }
        if (err < best_err) {
            best_err = err;
            best_scale = scale;
            best_min = min;
            @memcpy(l_out, l);
        }
    }
    return .{ .scale = best_scale, .offset = -best_min };
}

/// Symmetric fit x ≈ scale·L with L in −nmax..nmax−1. The largest-magnitude
/// value maps to −nmax (the side with one level more); the sweep then tries
/// nearby scales. Writes L. The returned scale has the sign that makes this so.
pub fn fitSymmetric(x: []const f32, w: []const f32, nmax: u8, nstep: usize, rdelta: f32, l_out: []i8) f32 {
    std.debug.assert(x.len == w.len and x.len == l_out.len and x.len <= 32);
    const max = signedAbsMax(x);
    if (max == 0) {
        @memset(l_out, 0);
        return 0;
    }
    const nm: f32 = @floatFromInt(nmax);
    const lo: i32 = -@as(i32, nmax);
    const hi: i32 = @as(i32, nmax) - 1;
    var best_scale: f32 = 0;
    var best_gain: f32 = -1;
    var buf: [32]i8 = undefined;
    const l = buf[0..x.len];
    const half: f32 = @floatFromInt(nstep / 2);
    for (0..nstep + 1) |step| {
        const iscale = -(nm + rdelta * (@as(f32, @floatFromInt(step)) - half)) / max;
        var sxl: f32 = 0;
        var sl2: f32 = 0;
        for (x, w, l) |xi, wi, *li| {
            const v = std.math.clamp(nearestInt(iscale * xi), lo, hi);
            li.* = @intCast(v);
            const lf: f32 = @floatFromInt(v);
            sxl += wi * xi * lf;
            sl2 += wi * lf * lf;
        }
        // The weighted error at the optimal scale sxl/sl2 is Σwx² − sxl²/sl2.
        if (sl2 > 0 and sxl * sxl / sl2 > best_gain) {
            best_gain = sxl * sxl / sl2;
            best_scale = sxl / sl2;
            @memcpy(l_out, l);
        }
    }
    return best_scale;
}

/// Value with the largest magnitude (keeps its sign).
pub fn signedAbsMax(v: []const f32) f32 {
    var amax: f32 = 0;
    var m: f32 = 0;
    for (v) |x| {
        if (@abs(x) > amax) {
            amax = @abs(x);
            m = x;
        }
    }
    return m;
}

/// Q4_K / Q5_K super-block quantizer: eight 32-weight sub-blocks, each fitted
/// affinely (weights favour large values: rms + |x|), then the eight scales
/// and eight offsets quantized to 6 bits against their maxima, then the
/// weights rounded again with the scales as stored. Writes L in 0..nmax.
pub fn quantizeAffine8(x: *const [qk]f32, nmax: u8, rmin: f32, nstep: usize, l: *[qk]u8) struct { d: f16, dmin: f16, scales: [12]u8 } {
    var scales: [8]f32 = undefined;
    var offsets: [8]f32 = undefined;
    var w: [32]f32 = undefined;
    for (0..8) |j| {
        const xs = x[32 * j ..][0..32];
        var sum_x2: f32 = 0;
        for (xs) |v| sum_x2 += v * v;
        const av = @sqrt(sum_x2 / 32);
        for (xs, &w) |v, *wi| wi.* = av + @abs(v);
        const fit = fitAffine(xs, &w, nmax, rmin, 0.1, nstep, l[32 * j ..][0..32]);
        scales[j] = fit.scale;
        offsets[j] = fit.offset;
    }
    const max_scale = std.mem.max(f32, &scales);
    const max_offset = std.mem.max(f32, &offsets);
    const inv_scale: f32 = if (max_scale > 0) 63 / max_scale else 0;
    const inv_offset: f32 = if (max_offset > 0) 63 / max_offset else 0;
    var ls: [8]u8 = undefined;
    var lm: [8]u8 = undefined;
    for (0..8) |j| {
        ls[j] = @intCast(std.math.clamp(nearestInt(inv_scale * scales[j]), 0, 63));
        lm[j] = @intCast(std.math.clamp(nearestInt(inv_offset * offsets[j]), 0, 63));
    }
    const d: f16 = @floatCast(max_scale / 63);
    const dmin: f16 = @floatCast(max_offset / 63);
    for (0..8) |j| {
        const dj = @as(f32, d) * @as(f32, @floatFromInt(ls[j]));
        if (dj == 0) continue;
        const mj = @as(f32, dmin) * @as(f32, @floatFromInt(lm[j]));
        for (x[32 * j ..][0..32], l[32 * j ..][0..32]) |v, *li| li.* = @intCast(std.math.clamp(nearestInt((v + mj) / dj), 0, nmax));
    }
    return .{ .d = d, .dmin = dmin, .scales = packScaleMin(&ls, &lm) };
}

// ---------------------------------------------------------------------------
// Test helpers shared by the K-quant test blocks.

pub const testing = struct {
    /// Gaussian-ish weights with a few outliers, like real weight rows.
    pub fn fillWeights(r: std.Random, x: []f32) void {
        for (x) |*v| {
            v.* = @floatCast(r.floatNorm(f64) * 0.02);
            if (r.uintLessThan(u32, 64) == 0) v.* *= 6;
        }
    }

    pub fn rms(x: []const f32) f64 {
        var s: f64 = 0;
        for (x) |v| s += @as(f64, v) * v;
        return @sqrt(s / @as(f64, @floatFromInt(x.len)));
    }

    pub fn rmsDiff(a: []const f32, b: []const f32) f64 {
        var s: f64 = 0;
        for (a, b) |u, v| s += (@as(f64, u) - v) * (@as(f64, u) - v);
        return @sqrt(s / @as(f64, @floatFromInt(a.len)));
    }

    /// Exercises a K-quant type file: quantize → dequantize error under
    /// `rel_rmse_max` of the signal's RMS, SIMD dot bit-identical to the
    /// scalar dot, and both close to the f64 dot of the dequantized weights
    /// with the Q8_K activations.
    pub fn checkType(comptime T: type, rel_rmse_max: f64) !void {
        const alloc = std.testing.allocator;
        var prng = std.Random.DefaultPrng.init(0x5eed);
        const r = prng.random();
        const nb = 16;
        const n = nb * qk;
        const x = try alloc.alloc(f32, n);
        defer alloc.free(x);
        const y = try alloc.alloc(f32, n);
        defer alloc.free(y);
        const act = try alloc.alloc(f32, n);
        defer alloc.free(act);
        const blocks = try alloc.alloc(T.Block, nb);
        defer alloc.free(blocks);
        const a = try alloc.alloc(q8_k.Block, nb);
        defer alloc.free(a);
        const ad = try alloc.alloc(f32, n);
        defer alloc.free(ad);

        fillWeights(r, x);
        // One all-zero block and one constant block: edge cases of the searches.
        @memset(x[0..qk], 0);
        @memset(x[qk .. 2 * qk], 0.25);
        // The largest accepted magnitudes give finite block scales.
        for (x[0..qk], 0..) |*v, i| v.* = if (i % 3 == 0) T.max_abs else if (i % 3 == 1) -T.max_abs else 0.5 * T.max_abs;
        T.quantize(x[0..qk], blocks[0..1]);
        T.dequantize(blocks[0..1], y[0..qk]);
        for (y[0..qk]) |v| try std.testing.expect(std.math.isFinite(v));
        @memset(x[0..qk], 0);
        T.quantize(x, blocks);
        T.dequantize(blocks, y);
        try std.testing.expectEqual(@as(f32, 0), std.mem.max(f32, y[0..qk]));
        const err = rmsDiff(x[2 * qk ..], y[2 * qk ..]);
        const sig = rms(x[2 * qk ..]);
        if (err > rel_rmse_max * sig) {
            std.debug.print("{s}: rmse {d} > {d} x rms {d}\n", .{ @typeName(T), err, rel_rmse_max, sig });
            return error.TestUnexpectedResult;
        }
        // Round trip: re-quantizing the dequantized values changes little.
        const blocks2 = try alloc.alloc(T.Block, nb);
        defer alloc.free(blocks2);
        const y2 = try alloc.alloc(f32, n);
        defer alloc.free(y2);
        T.quantize(y, blocks2);
        T.dequantize(blocks2, y2);
        try std.testing.expect(rmsDiff(y, y2) <= 0.5 * err);

        for (act) |*v| v.* = r.float(f32) * 2 - 1;
        q8_k.quantize(act, a);
        q8_k.dequantize(a, ad);
        var exact: f64 = 0;
        var mag: f64 = 0;
        for (y, ad) |u, v| {
            exact += @as(f64, u) * v;
            mag += @abs(@as(f64, u) * v);
        }
        const g = T.dotGeneric(blocks, a);
        const s = T.dot(blocks, a);
        try std.testing.expectEqual(@as(u32, @bitCast(g)), @as(u32, @bitCast(s)));
        try std.testing.expectApproxEqAbs(exact, @as(f64, g), 1e-5 * mag);
        // Row slices of every length give the same as the block-by-block sum.
        for (0..nb + 1) |k| {
            try std.testing.expectEqual(@as(u32, @bitCast(T.dotGeneric(blocks[0..k], a[0..k]))), @as(u32, @bitCast(T.dot(blocks[0..k], a[0..k]))));
        }
    }
};

test "nearestInt rounds ties to even" {
    try std.testing.expectEqual(@as(i32, 2), nearestInt(2.5));
    try std.testing.expectEqual(@as(i32, 4), nearestInt(3.5));
    try std.testing.expectEqual(@as(i32, -2), nearestInt(-2.5));
    try std.testing.expectEqual(@as(i32, -3), nearestInt(-2.51));
    try std.testing.expectEqual(@as(i32, 0), nearestInt(std.math.nan(f32)));
    try std.testing.expectEqual(@as(i32, 4194303), nearestInt(std.math.inf(f32)));
    try std.testing.expectEqual(@as(i32, -4194303), nearestInt(-1e30));
}

test "signedAbsMax keeps the sign of the largest magnitude" {
    // A 16-wide case: an earlier formulation was vectorized wrongly by the optimizer.
    const v = [16]f32{ -6.5e-3, 1.1e-3, -1.2e-3, -9.3e-4, -1.3e-3, -1.6e-3, 1.8e-3, -9.6e-4, -9.5e-4, 1.1e-3, -1.7e-3, 2.7e-3, 1.2e-3, -9.2e-4, -1.5e-3, 8.2e-4 };
    try std.testing.expectEqual(@as(f32, -6.5e-3), signedAbsMax(&v));
    try std.testing.expectEqual(@as(f32, 0), signedAbsMax(&[_]f32{ 0, -0.0 }));
}

test "scale/min packing round-trips every 6-bit pair" {
    var sc: [8]u8 = undefined;
    var m: [8]u8 = undefined;
    for (0..64) |v| {
        for (0..8) |j| {
            sc[j] = @intCast((v + 7 * j) % 64);
            m[j] = @intCast((63 - v + 3 * j) % 64);
        }
        const p = packScaleMin(&sc, &m);
        const sm = scalesMins(&p);
        for (0..8) |j| {
            try std.testing.expectEqual(@as(i16, sc[j]), sm.sc[j]);
            try std.testing.expectEqual(@as(i16, m[j]), sm.m[2 * j]);
            try std.testing.expectEqual(@as(i16, m[j]), sm.m[2 * j + 1]);
            const one = unpackScaleMin(&p, j);
            try std.testing.expectEqual(sc[j], one.sc);
            try std.testing.expectEqual(m[j], one.m);
        }
    }
}

fn arrayChunk(u: *const [qk]u8, comptime c: usize) U8x32 {
    return u[32 * c ..][0..32].*;
}

fn unpackMinus32(u: *const [qk]u8, q: *[qk]i8) void {
    for (q, u) |*x, v| x.* = @as(i8, @intCast(v)) - 32;
}

fn unpackAsIs(u: *const [qk]u8, q: *[qk]i8) void {
    for (q, u) |*x, v| x.* = @intCast(v);
}

test "blockLanes: SIMD lanes equal the scalar lanes for 1 and 3 tokens, and they sum to Σ sc·q·a, including extremes" {
    var prng = std.Random.DefaultPrng.init(3);
    const r = prng.random();
    var u: [qk]u8 = undefined;
    var sc: [16]i16 = undefined;
    var m: [16]i16 = undefined;
    var blk: q8_k.Block = undefined;
    var other: q8_k.Block = undefined;
    for (0..50) |it| {
        for (&u, &blk.qs) |*x, *y| {
            x.* = if (it == 0) 0 else if (it == 1) 63 else r.uintAtMost(u8, 63);
            y.* = if (it < 2) -128 else r.int(i8);
        }
        for (&sc, &m) |*s, *n| {
            s.* = if (it < 2) -128 else r.intRangeAtMost(i16, -128, 127);
            n.* = if (it < 2) 63 else r.intRangeAtMost(i16, 0, 63);
        }
        for (&blk.bsums, 0..) |*b, j| {
            var t: i16 = 0;
            for (blk.qs[16 * j ..][0..16]) |v| t += v;
            b.* = t;
        }
        const one = [1]*const q8_k.Block{&blk};
        const simd = blockLanes(true, 1, 32, [qk]u8, unpackMinus32, arrayChunk, &u, &one, &sc)[0];
        const scalar = blockLanes(false, 1, 32, [qk]u8, unpackMinus32, arrayChunk, &u, &one, &sc)[0];
        try std.testing.expectEqual(scalar, simd);
        // A group of tokens gets each token's single-token lanes.
        for (&other.qs) |*y| y.* = r.int(i8);
        for (&other.bsums, 0..) |*b, j| {
            var t: i16 = 0;
            for (other.qs[16 * j ..][0..16]) |v| t += v;
            b.* = t;
        }
        const group = [3]*const q8_k.Block{ &blk, &other, &blk };
        const other_lanes = blockLanes(false, 1, 32, [qk]u8, unpackMinus32, arrayChunk, &u, &.{&other}, &sc)[0];
        try std.testing.expectEqual([3][lanes]i32{ scalar, other_lanes, scalar }, blockLanes(true, 3, 32, [qk]u8, unpackMinus32, arrayChunk, &u, &group, &sc));
        try std.testing.expectEqual(blockLanes(false, 3, 0, [qk]u8, unpackAsIs, arrayChunk, &u, &group, &sc), blockLanes(true, 3, 0, [qk]u8, unpackAsIs, arrayChunk, &u, &group, &sc));
        var want: i64 = 0;
        for (u, blk.qs, 0..) |v, x, i| want += @as(i64, sc[i / 16]) * (@as(i64, v) - 32) * x;
        var got: i64 = 0;
        for (simd) |v| got += v;
        try std.testing.expectEqual(want, got);
        try std.testing.expectEqual(minLanes(false, &m, &blk), minLanes(true, &m, &blk));
        try std.testing.expectEqual(blockLanes(false, 1, 0, [qk]u8, unpackAsIs, arrayChunk, &u, &one, &sc), blockLanes(true, 1, 0, [qk]u8, unpackAsIs, arrayChunk, &u, &one, &sc));
        const sc8: [8]i16 = sc[0..8].*;
        const per32 = blockLanes(true, 1, 0, [qk]u8, unpackAsIs, arrayChunk, &u, &one, &sc8)[0];
        try std.testing.expectEqual(blockLanes(false, 1, 0, [qk]u8, unpackAsIs, arrayChunk, &u, &one, &sc8)[0], per32);
        want = 0;
        for (u, blk.qs, 0..) |v, x, i| want += @as(i64, sc8[i / 32]) * v * x;
        got = 0;
        for (per32) |v| got += v;
        try std.testing.expectEqual(want, got);
    }
}
