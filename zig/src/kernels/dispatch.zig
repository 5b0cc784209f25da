//! Quantize, dequantize and matvec by GGML type id: the one place where a
//! type id meets its kernel file. Adding a type (e.g. the K-quants) is one
//! line in `Kernel` and in `withKernel`'s list (and, for a new activation format, one in `ActivationOf`).
//!
//! A matvec quantizes the activations once per call to the weight type's
//! activation format (Q8_0, Q8_1, Q8_K; F16 for F16 weights, BF16 for BF16
//! weights, f32 for F32 — GGML's `vec_dot_type`), then computes
//! one dot product per row, split by rows across the pool's threads.
const std = @import("std");
const status = @import("../c_api/status.zig");
const types = @import("types.zig");
const threads = @import("../threads.zig");

const GgmlType = types.GgmlType;
const Error = status.Error;

/// The kernel file of each known type.
fn Kernel(comptime t: GgmlType) type {
    return switch (t) {
        .f32 => @import("f32.zig"),
        .f16 => @import("f16.zig"),
        .bf16 => @import("bf16.zig"),
        .q4_0 => @import("q4_0.zig"),
        .q4_1 => @import("q4_1.zig"),
        .q5_0 => @import("q5_0.zig"),
        .q5_1 => @import("q5_1.zig"),
        .q8_0 => @import("q8_0.zig"),
        .q8_1 => @import("q8_1.zig"),
        .q2_k => @import("q2_k.zig"),
        .q3_k => @import("q3_k.zig"),
        .q4_k => @import("q4_k.zig"),
        .q5_k => @import("q5_k.zig"),
        .q6_k => @import("q6_k.zig"),
        .q8_k => @import("q8_k.zig"),
        _ => @compileError("no kernel for this type id"),
    };
}

/// The module that quantizes activations of block type `A`.
fn ActivationOf(comptime A: type) type {
    if (A == f32) return @import("f32.zig");
    if (A == f16) return @import("f16.zig");
    // BF16 has no Zig float type: its elements are u16 bit patterns.
    if (A == u16) return @import("bf16.zig");
    if (A == @import("q8_0.zig").Block) return @import("q8_0.zig");
    if (A == @import("q8_1.zig").Block) return @import("q8_1.zig");
    if (A == @import("q8_k.zig").Block) return @import("q8_k.zig");
    @compileError("no activation quantizer for " ++ @typeName(A));
}

/// Calls `body(K)` with the kernel of `t` (known at compile time inside).
fn withKernel(t: GgmlType, op: []const u8, comptime body: anytype, args: anytype) Error!void {
    switch (t) {
        inline .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .q2_k, .q3_k, .q4_k, .q5_k, .q6_k, .q8_k => |ct| {
            const K = comptime Kernel(ct);
            comptime {
                std.debug.assert(@sizeOf(K.Block) == ct.blockBytes().?);
                std.debug.assert(K.block_elems == ct.blockElems().?);
            }
            return @call(.auto, body, .{K} ++ args);
        },
        _ => return status.fail(error.InvalidArgument, "{s}: unknown GGML type id {d}", .{ op, @intFromEnum(t) }),
    }
}

fn blocks(comptime B: type, bytes: []const u8, name: []const u8) Error![]const B {
    if (@intFromPtr(bytes.ptr) % @alignOf(B) != 0)
        return status.fail(error.InvalidArgument, "{s} is not aligned to {d} bytes", .{ name, @alignOf(B) });
    const p: [*]const B = @ptrCast(@alignCast(bytes.ptr));
    return p[0 .. bytes.len / @sizeOf(B)];
}

fn blocksMut(comptime B: type, bytes: []u8, name: []const u8) Error![]B {
    return @constCast(try blocks(B, bytes, name));
}

/// Bytes of `n` elements of `t`, with the reason when `n` does not fit.
fn bytesFor(t: GgmlType, n: usize, op: []const u8, what: []const u8) Error!usize {
    const be = t.blockElems().?;
    if (n % be != 0)
        return status.fail(error.InvalidArgument, "{s} {s}: {s} = {d} is not a multiple of the block size {d}", .{ op, @tagName(t), what, n, be });
    return t.rowBytes(n) orelse status.fail(error.InvalidArgument, "{s} {s}: {s} = {d} overflows", .{ op, @tagName(t), what, n });
}

/// f32 → `t`: `dst` must be exactly the bytes of `src.len` elements.
pub fn quantize(t: GgmlType, src: []const f32, dst: []u8) Error!void {
    return withKernel(t, "quantize", quantizeAs, .{ t, src, dst });
}

fn quantizeAs(comptime K: type, t: GgmlType, src: []const f32, dst: []u8) Error!void {
    const need = try bytesFor(t, src.len, "quantize", "n");
    if (dst.len != need)
        return status.fail(error.LengthMismatch, "quantize {s}: dst has {d} bytes, expected {d} for n = {d}", .{ @tagName(t), dst.len, need, src.len });
    if (K.block_elems > 1) {
        for (src, 0..) |v, i| if (!std.math.isFinite(v))
            return status.fail(error.InvalidArgument, "quantize {s}: src[{d}] is {d}; quantized types need finite values", .{ @tagName(t), i, v });
        if (@hasDecl(K, "max_abs")) {
            for (src, 0..) |v, i| if (@abs(v) > K.max_abs)
                return status.fail(error.InvalidArgument, "quantize {s}: src[{d}] is {d}, beyond ±{d}, the largest magnitude whose block scales fit in f16", .{ @tagName(t), i, v, K.max_abs });
        }
    }
    K.quantize(src, try blocksMut(K.Block, dst, "dst"));
}

/// `t` → f32: `src` must be exactly the bytes of `dst.len` elements.
pub fn dequantize(t: GgmlType, src: []const u8, dst: []f32) Error!void {
    return withKernel(t, "dequantize", dequantizeAs, .{ t, src, dst });
}

fn dequantizeAs(comptime K: type, t: GgmlType, src: []const u8, dst: []f32) Error!void {
    const need = try bytesFor(t, dst.len, "dequantize", "n");
    if (src.len != need)
        return status.fail(error.LengthMismatch, "dequantize {s}: src has {d} bytes, expected {d} for n = {d}", .{ @tagName(t), src.len, need, dst.len });
    K.dequantize(try blocks(K.Block, src, "src"), dst);
}

/// y = W·x, W `rows × cols` of type `t` (row-major, `rows` rows of rowBytes(cols)).
pub fn matvec(pool: ?*threads.Pool, t: GgmlType, w: []const u8, x: []const f32, y: []f32, rows: usize, cols: usize) Error!void {
    return withKernel(t, "matvec", matvecAs, .{ pool, t, w, x, y, rows, cols });
}

fn matvecAs(comptime K: type, pool: ?*threads.Pool, t: GgmlType, w: []const u8, x: []const f32, y: []f32, rows: usize, cols: usize) Error!void {
    if (!@hasDecl(K, "dot"))
        return status.fail(error.Unsupported, "matvec: {s} is an activation format, not a weight type", .{@tagName(t)});
    _ = std.math.mul(usize, rows, cols) catch
        return status.fail(error.InvalidArgument, "matvec {s}: rows {d} x cols {d} overflows", .{ @tagName(t), rows, cols });
    const row_bytes = try bytesFor(t, cols, "matvec", "cols");
    const need = std.math.mul(usize, rows, row_bytes) catch
        return status.fail(error.InvalidArgument, "matvec {s}: rows {d} x row bytes {d} overflows", .{ @tagName(t), rows, row_bytes });
    if (w.len != need)
        return status.fail(error.LengthMismatch, "matvec {s}: w has {d} bytes, expected rows*rowBytes = {d}*{d} = {d}", .{ @tagName(t), w.len, rows, row_bytes, need });
    if (x.len != cols) return status.fail(error.LengthMismatch, "matvec {s}: x has {d} elements, expected cols = {d}", .{ @tagName(t), x.len, cols });
    if (y.len != rows) return status.fail(error.LengthMismatch, "matvec {s}: y has {d} elements, expected rows = {d}", .{ @tagName(t), y.len, rows });
    const wb = try blocks(K.Block, w, "w");

    const A = ActivationOf(K.Activation);
    var fallback = std.heap.stackFallback(32 * 1024, std.heap.page_allocator);
    const alloc = fallback.get();
    // Activations start on a cache line: f32 ones are copied there (the
    // float kernels' loads then never straddle two lines), others quantized.
    const act: []align(64) const K.Activation = if (K.Activation == f32) blk: {
        const buf = alloc.alignedAlloc(f32, 64, cols) catch
            return status.fail(error.OutOfMemory, "matvec {s}: no memory for {d} activations", .{ @tagName(t), cols });
        @memcpy(buf, x);
        break :blk buf;
    } else blk: {
        // Float formats round each value on its own (NaN and ±inf carry through, as GGML).
        if (A.block_elems > 1) for (x, 0..) |v, i| if (!std.math.isFinite(v))
            return status.fail(error.InvalidArgument, "matvec {s}: x[{d}] is {d}; activations must be finite", .{ @tagName(t), i, v });
        const buf = alloc.alignedAlloc(K.Activation, 64, cols / A.block_elems) catch
            return status.fail(error.OutOfMemory, "matvec {s}: no memory for {d} activation blocks", .{ @tagName(t), cols / A.block_elems });
        A.quantize(x, buf);
        break :blk buf;
    };
    defer alloc.free(act);

    const Rows = struct {
        w: []const K.Block,
        a: []const K.Activation,
        y: []f32,
        nb: usize,
        fn run(p: *const anyopaque, begin: usize, end: usize) void {
            const c: *const @This() = @ptrCast(@alignCast(p));
            for (begin..end) |r| c.y[r] = K.dot(c.w[r * c.nb ..][0..c.nb], c.a);
        }
    };
    const ctx = Rows{ .w = wb, .a = act, .y = y, .nb = cols / K.block_elems };
    const job = threads.Job{ .ctx = &ctx, .func = Rows.run, .rows = rows };
    if (pool) |p| {
        p.run(job) catch return status.fail(error.Busy, "matvec: the thread pool is running another call", .{});
    } else job.func(job.ctx, 0, rows);
}

test "dispatch: matvec equals per-row dots on quantized activations, for any thread count" {
    const q4_0 = @import("q4_0.zig");
    const q8_0 = @import("q8_0.zig");
    const rows = 37;
    const cols = 96;
    var wf: [rows * cols]f32 = undefined;
    var x: [cols]f32 = undefined;
    @import("qdot.zig").testing.fill(&wf, 1);
    @import("qdot.zig").testing.fill(&x, 2);
    var wq: [rows * cols / 32]q4_0.Block = undefined;
    try quantize(.q4_0, &wf, std.mem.sliceAsBytes(&wq));
    var xq: [cols / 32]q8_0.Block = undefined;
    q8_0.quantize(&x, &xq);
    var want: [rows]f32 = undefined;
    for (&want, 0..) |*o, r| o.* = q4_0.dot(wq[r * 3 ..][0..3], &xq);
    var y: [rows]f32 = undefined;
    try matvec(null, .q4_0, std.mem.sliceAsBytes(&wq), &x, &y, rows, cols);
    try std.testing.expectEqual(want, y);
    for (1..4) |n| {
        const pool = try threads.Pool.create(std.testing.allocator, n);
        defer pool.destroy();
        @memset(&y, 0);
        try matvec(pool, .q4_0, std.mem.sliceAsBytes(&wq), &x, &y, rows, cols);
        try std.testing.expectEqual(want, y);
    }
}

test "dispatch: shape, type and value errors" {
    var y: [2]f32 = undefined;
    const x = [_]f32{0} ** 32;
    const w = [_]u8{0} ** 36;
    try std.testing.expectError(error.LengthMismatch, matvec(null, .q4_0, w[0..35], &x, &y, 2, 32));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "expected rows*rowBytes = 2*18 = 36") != null);
    try std.testing.expectError(error.InvalidArgument, matvec(null, .q4_0, &w, x[0..16], &y, 2, 16));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "not a multiple of the block size 32") != null);
    try std.testing.expectError(error.Unsupported, matvec(null, .q8_1, &w, &x, y[0..1], 1, 32));
    try std.testing.expectError(error.InvalidArgument, matvec(null, @enumFromInt(77), &w, &x, &y, 2, 32));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "unknown GGML type id 77") != null);
    var nan = x;
    nan[3] = std.math.nan(f32);
    var dst: [34]u8 align(2) = undefined;
    try std.testing.expectError(error.InvalidArgument, quantize(.q8_0, &nan, &dst));
    try std.testing.expect(std.mem.indexOf(u8, status.lastMessage(), "src[3] is nan") != null);
    try std.testing.expectError(error.LengthMismatch, quantize(.q8_0, &x, dst[0..33]));
}
