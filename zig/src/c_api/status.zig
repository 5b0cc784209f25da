//! Status codes crossing the C ABI, the one error→status switch, and the
//! per-thread `last_error` text.
//!
//! Every export returns `Status` as an `i32`: 0 is success, negatives are named
//! failures. Detail text for the most recent failure on the calling thread is
//! kept here and copied out by `emoe_last_error`.
const std = @import("std");

pub const Status = enum(i32) {
    ok = 0,
    invalid_argument = -1,
    out_of_memory = -2,
    io = -3,
    unsupported = -4,
    corrupt_data = -5,
    closed = -6,
    busy = -7,
};

/// Every error any export can return. Adding an error here without a status
/// in `toStatus` is a compile error: the switch is exhaustive.
pub const Error = error{
    InvalidArgument,
    LengthMismatch,
    NullPointer,
    OutOfMemory,
    InputOutput,
    EndOfFile,
    Unsupported,
    ChecksumMismatch,
    Closed,
    Busy,
};

pub fn toStatus(err: Error) Status {
    return switch (err) {
        error.InvalidArgument, error.LengthMismatch, error.NullPointer => .invalid_argument,
        error.OutOfMemory => .out_of_memory,
        error.InputOutput, error.EndOfFile => .io,
        error.Unsupported => .unsupported,
        error.ChecksumMismatch => .corrupt_data,
        error.Closed => .closed,
        error.Busy => .busy,
    };
}

const max_message_bytes = 512;
threadlocal var message_buf: [max_message_bytes]u8 = undefined;
threadlocal var message_len: usize = 0;

/// Records detail text for the calling thread and returns `err` so callers can
/// write `return fail(error.X, "...", .{...})`. Text longer than the buffer is cut.
pub fn fail(err: Error, comptime fmt: []const u8, args: anytype) Error {
    const written = std.fmt.bufPrint(&message_buf, fmt, args) catch blk: {
        const ellipsis = "...";
        @memcpy(message_buf[max_message_bytes - ellipsis.len ..], ellipsis);
        break :blk message_buf[0..];
    };
    message_len = written.len;
    return err;
}

pub fn clear() void {
    message_len = 0;
}

pub fn lastMessage() []const u8 {
    return message_buf[0..message_len];
}

/// Runs an export body, mapping its error (if any) to a status. If the body
/// failed without setting a message, the error name is used.
pub fn call(result: Error!void) i32 {
    result catch |err| {
        if (message_len == 0) fail(err, "{s}", .{@errorName(err)}) catch {};
        return @intFromEnum(toStatus(err));
    };
    return @intFromEnum(Status.ok);
}

test "every error maps to a negative status" {
    inline for (@typeInfo(Error).error_set.?) |e| {
        const s = toStatus(@field(Error, e.name));
        try std.testing.expect(@intFromEnum(s) < 0);
    }
}

test "fail records text and call maps status" {
    clear();
    const r = call(fail(error.LengthMismatch, "x has {d} floats, expected {d}", .{ 3, 4 }));
    try std.testing.expectEqual(@intFromEnum(Status.invalid_argument), r);
    try std.testing.expectEqualStrings("x has 3 floats, expected 4", lastMessage());
    clear();
    try std.testing.expectEqual(@as(i32, 0), call({}));
}

test "overlong message is cut, not overflowed" {
    clear();
    const long = "a" ** 1000;
    fail(error.InvalidArgument, "{s}", .{long}) catch {};
    try std.testing.expectEqual(@as(usize, max_message_bytes), lastMessage().len);
    try std.testing.expect(std.mem.endsWith(u8, lastMessage(), "..."));
    clear();
}
