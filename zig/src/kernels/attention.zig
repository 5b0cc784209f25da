//! Attention of one query token over a KV cache, as llama.cpp's graph without
//! flash attention computes it: per head, scores = K·q (GGML's mul_mat),
//! softmax(scores · scale) (ggml_soft_max_ext, no mask: the cache holds only
//! the positions this token sees), then out = Σ_p softmax_p · V_p (mul_mat
//! with V). Grouped-query attention: head h reads KV head h / (n_head / n_head_kv).
//!
//! Cache layout: position-major, `n_kv` positions × `n_head_kv` heads ×
//! `head_dim`, of f32 or f16. With an F16 cache the f32 operands of both
//! products are rounded to f16 first, as GGML's vec_dot_type for F16 does.
//! Both products are summed in f64 (in a fixed lane order) and rounded once:
//! GGML sums them in f32 vector lanes, a few ulp from the exact sum, and
//! rounding once keeps us as close to it as any fixed f32 order could.
//! KV heads (each with its group of query heads) are split over the pool's
//! threads; each head's result is computed by the same code whatever the
//! thread count.
const std = @import("std");
const status = @import("../c_api/status.zig");
const threads = @import("../threads.zig");
const types = @import("types.zig");
const act = @import("act.zig");

const Error = status.Error;

pub const Shape = struct { n_head: usize, n_head_kv: usize, head_dim: usize, n_kv: usize, scale: f32 };

/// `out` (`n_head × head_dim`) = attention of `q` (same shape) over the
/// caches `k` and `v` (bytes of `n_kv × n_head_kv × head_dim` elements of `kv_type`).
pub fn attention(pool: ?*threads.Pool, kv_type: types.GgmlType, q: []const f32, k: []const u8, v: []const u8, out: []f32, s: Shape) Error!void {
    return switch (kv_type) {
        .f32 => attentionAs(f32, pool, q, k, v, out, s),
        .f16 => attentionAs(f16, pool, q, k, v, out, s),
        else => status.fail(error.Unsupported, "attention: KV cache type {d} is not f32 (0) or f16 (1)", .{@intFromEnum(kv_type)}),
    };
}

fn cacheOf(comptime T: type, bytes: []const u8, name: []const u8, n: usize) Error![]const T {
    if (bytes.len != n * @sizeOf(T))
        return status.fail(error.LengthMismatch, "attention: {s} cache has {d} bytes, expected n_kv*n_head_kv*head_dim*{d} = {d}", .{ name, bytes.len, @sizeOf(T), n * @sizeOf(T) });
    if (@intFromPtr(bytes.ptr) % @alignOf(T) != 0)
        return status.fail(error.InvalidArgument, "attention: {s} cache is not aligned to {d} bytes", .{ name, @alignOf(T) });
    const p: [*]const T = @ptrCast(@alignCast(bytes.ptr));
    return p[0..n];
}

fn attentionAs(comptime T: type, pool: ?*threads.Pool, q: []const f32, k_bytes: []const u8, v_bytes: []const u8, out: []f32, s: Shape) Error!void {
    if (s.n_head == 0 or s.n_head_kv == 0 or s.head_dim == 0 or s.n_kv == 0)
        return status.fail(error.InvalidArgument, "attention: n_head {d}, n_head_kv {d}, head_dim {d} and n_kv {d} must be positive", .{ s.n_head, s.n_head_kv, s.head_dim, s.n_kv });
    if (s.n_head % s.n_head_kv != 0)
        return status.fail(error.InvalidArgument, "attention: n_head {d} is not a multiple of n_head_kv {d}", .{ s.n_head, s.n_head_kv });
    if (!std.math.isFinite(s.scale)) return status.fail(error.InvalidArgument, "attention: scale is {d}", .{s.scale});
    const q_len = std.math.mul(usize, s.n_head, s.head_dim) catch
        return status.fail(error.InvalidArgument, "attention: n_head {d} x head_dim {d} overflows", .{ s.n_head, s.head_dim });
    const kv_dim = s.n_head_kv * s.head_dim;
    const cache_len = std.math.mul(usize, s.n_kv, kv_dim) catch
        return status.fail(error.InvalidArgument, "attention: n_kv {d} x {d} overflows", .{ s.n_kv, kv_dim });
    if (q.len != q_len) return status.fail(error.LengthMismatch, "attention: q has {d} elements, expected n_head*head_dim = {d}", .{ q.len, q_len });
    if (out.len != q_len) return status.fail(error.LengthMismatch, "attention: out has {d} elements, expected n_head*head_dim = {d}", .{ out.len, q_len });
    const k = try cacheOf(T, k_bytes, "k", cache_len);
    const v = try cacheOf(T, v_bytes, "v", cache_len);

    // Per head: its scores (f32), and its query (rounded to f16 for an F16 cache) and output sums (f64).
    var fallback = std.heap.stackFallback(16 * 1024, std.heap.page_allocator);
    const alloc = fallback.get();
    const scratch = alloc.alloc(f32, s.n_head * s.n_kv) catch
        return status.fail(error.OutOfMemory, "attention: no memory for {d} heads x {d} scores", .{ s.n_head, s.n_kv });
    defer alloc.free(scratch);
    const wide = alloc.alloc(f64, s.n_head * 2 * s.head_dim) catch
        return status.fail(error.OutOfMemory, "attention: no memory for {d} heads x {d} sums", .{ s.n_head, s.head_dim });
    defer alloc.free(wide);

    const Heads = struct {
        q: []const f32,
        k: []const T,
        v: []const T,
        out: []f32,
        scratch: []f32,
        wide: []f64,
        s: Shape,
        /// KV heads `begin..end`, each with its group of query heads: every K and V
        /// row is read once for the group, and each query head's numbers come out
        /// exactly as if it were computed alone.
        fn run(ctx: *const anyopaque, begin: usize, end: usize) void {
            const c: *const @This() = @ptrCast(@alignCast(ctx));
            const hd = c.s.head_dim;
            const n_kv = c.s.n_kv;
            const row = c.s.n_head_kv * hd;
            const group = c.s.n_head / c.s.n_head_kv;
            for (begin..end) |g| {
                const h0 = g * group;
                const h1 = h0 + group;
                for (h0..h1) |h| {
                    const qh = c.wide[h * 2 * hd ..][0..hd];
                    for (qh, c.q[h * hd ..][0..hd]) |*d, x| d.* = if (T == f16) @as(f16, @floatCast(x)) else x;
                }
                for (0..n_kv) |p| {
                    const kr = c.k[p * row + g * hd ..][0..hd];
                    for (h0..h1) |h| c.scratch[h * n_kv + p] = @floatCast(dot(T, kr, c.wide[h * 2 * hd ..][0..hd]));
                }
                for (h0..h1) |h| {
                    act.softmaxRow(c.scratch[h * n_kv ..][0..n_kv], c.s.scale);
                    @memset(c.wide[h * 2 * hd + hd ..][0..hd], 0);
                }
                for (0..n_kv) |p| {
                    const vr = c.v[p * row + g * hd ..][0..hd];
                    for (h0..h1) |h| {
                        const w = c.scratch[h * n_kv + p];
                        const wr: f64 = if (T == f16) @as(f16, @floatCast(w)) else w;
                        axpy(T, wr, vr, c.wide[h * 2 * hd + hd ..][0..hd]);
                    }
                }
                for (h0..h1) |h| {
                    for (c.out[h * hd ..][0..hd], c.wide[h * 2 * hd + hd ..][0..hd]) |*o, a| o.* = @floatCast(a);
                }
            }
        }
    };
    const ctx = Heads{ .q = q, .k = k, .v = v, .out = out, .scratch = scratch, .wide = wide, .s = s };
    const job = threads.Job{ .ctx = &ctx, .func = Heads.run, .rows = s.n_head_kv };
    if (pool) |p| {
        p.run(job) catch return status.fail(error.Busy, "attention: the thread pool is running another call", .{});
    } else job.func(job.ctx, 0, s.n_head_kv);
}

const lanes = 8;
const F64x = @Vector(lanes, f64);

/// Σ k·q in f64 (the products of f32/f16 values are exact), in `lanes`
/// partial sums reduced left to right: a fixed order on every target.
fn dot(comptime T: type, k: []const T, q: []const f64) f64 {
    var acc: F64x = @splat(0);
    var i: usize = 0;
    while (i + lanes <= k.len) : (i += lanes) {
        const kv: @Vector(lanes, T) = k[i..][0..lanes].*;
        const qv: F64x = q[i..][0..lanes].*;
        acc += @as(F64x, @floatCast(kv)) * qv;
    }
    const parts: [lanes]f64 = acc;
    var sum: f64 = 0;
    for (parts) |x| sum += x;
    while (i < k.len) : (i += 1) sum += @as(f64, k[i]) * q[i];
    return sum;
}

/// acc += w · v, element-wise in f64.
fn axpy(comptime T: type, w: f64, v: []const T, acc: []f64) void {
    const wv: F64x = @splat(w);
    var i: usize = 0;
    while (i + lanes <= v.len) : (i += lanes) {
        const x: @Vector(lanes, T) = v[i..][0..lanes].*;
        const a: F64x = acc[i..][0..lanes].*;
        acc[i..][0..lanes].* = a + wv * @as(F64x, @floatCast(x));
    }
    while (i < v.len) : (i += 1) acc[i] += w * @as(f64, v[i]);
}

/// An f64 reference of the same computation for the tests.
fn reference(comptime T: type, q: []const f32, k: []const T, v: []const T, out: []f64, s: Shape) void {
    const hd = s.head_dim;
    const kv_dim = s.n_head_kv * hd;
    var scores: [64]f64 = undefined;
    for (0..s.n_head) |h| {
        const ko = (h / (s.n_head / s.n_head_kv)) * hd;
        var max: f64 = -std.math.inf(f64);
        for (0..s.n_kv) |p| {
            var d: f64 = 0;
            for (0..hd) |i| d += @as(f64, q[h * hd + i]) * @as(f64, k[p * kv_dim + ko + i]);
            scores[p] = d * s.scale;
            max = @max(max, scores[p]);
        }
        var sum: f64 = 0;
        for (scores[0..s.n_kv]) |*x| {
            x.* = @exp(x.* - max);
            sum += x.*;
        }
        for (0..hd) |i| {
            var o: f64 = 0;
            for (0..s.n_kv) |p| o += scores[p] / sum * @as(f64, v[p * kv_dim + ko + i]);
            out[h * hd + i] = o;
        }
    }
}

test "attention: f32 and f16 caches close to an f64 reference (GQA), identical for 1..3 threads, shape errors" {
    const s = Shape{ .n_head = 6, .n_head_kv = 2, .head_dim = 40, .n_kv = 19, .scale = 1.0 / @sqrt(40.0) };
    const fill = @import("qdot.zig").testing.fill;
    var q: [6 * 40]f32 = undefined;
    var kf: [19 * 2 * 40]f32 = undefined;
    var vf: [19 * 2 * 40]f32 = undefined;
    fill(&q, 1);
    fill(&kf, 2);
    fill(&vf, 3);
    var kh: [kf.len]f16 = undefined;
    var vh: [vf.len]f16 = undefined;
    for (&kh, kf) |*d, x| d.* = @floatCast(x);
    for (&vh, vf) |*d, x| d.* = @floatCast(x);
    var want: [q.len]f64 = undefined;
    var got: [q.len]f32 = undefined;
    var first: [q.len]f32 = undefined;
    for ([_]types.GgmlType{ .f32, .f16 }) |t| {
        const kb: []const u8 = if (t == .f32) std.mem.sliceAsBytes(&kf) else std.mem.sliceAsBytes(&kh);
        const vb: []const u8 = if (t == .f32) std.mem.sliceAsBytes(&vf) else std.mem.sliceAsBytes(&vh);
        if (t == .f32) reference(f32, &q, &kf, &vf, &want, s) else reference(f16, &q, &kh, &vh, &want, s);
        try attention(null, t, &q, kb, vb, &first, s);
        // F16 rounds q and the probabilities to f16 (2^-11 relative each).
        const tol: f64 = if (t == .f32) 1e-5 else 4e-3;
        for (want, first) |w, g| try std.testing.expectApproxEqAbs(w, g, tol * (@abs(w) + 1));
        for (1..4) |n| {
            const pool = try threads.Pool.create(std.testing.allocator, n);
            defer pool.destroy();
            try attention(pool, t, &q, kb, vb, &got, s);
            try std.testing.expectEqualSlices(u32, @ptrCast(&first), @ptrCast(&got));
        }
    }
    const kb = std.mem.sliceAsBytes(&kf);
    try std.testing.expectError(error.LengthMismatch, attention(null, .f32, &q, kb[4..], std.mem.sliceAsBytes(&vf), &got, s));
    try std.testing.expectError(error.Unsupported, attention(null, .q8_0, &q, kb, kb, &got, s));
    var bad = s;
    bad.n_head_kv = 4;
    try std.testing.expectError(error.InvalidArgument, attention(null, .f32, &q, kb, kb, &got, bad));
}
