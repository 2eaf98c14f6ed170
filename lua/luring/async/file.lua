-- SPDX-License-Identifier: Apache-2.0
-- io-compatible files for luring.async: read formats, lines, seek and write as Lua's io
-- library has them, with every read and write an io_uring request of the calling task.
-- Reads are buffered ahead (64 KiB), so read("l") is not a request per line; writes go
-- to the kernel at once (nothing to flush). read_at/write_at are positional and may be
-- in flight from many tasks at once.
local luring = require "luring"
local core = require "luring.async.core"

local need_task, start, await = core.need_task, core.start, core.await
local start_for = core.start_for
local task_of, after_wait, before_wait = core.task_of, core.after_wait, core.before_wait
local find, sub, byte, concat = string.find, string.sub, string.byte, table.concat
local co_running = coroutine.running
local math_type = math.type
local strerror = luring.strerror
local l_read, l_write = luring.read, luring.write
local aw_read, aw_write = core.aw.read, core.aw.write

local file = {}

local READ_AHEAD = 65536
local MAX_TRANSFER = 0x7ffff000  -- the kernel's largest single transfer (MAX_RW_COUNT)
local READ_ALL = 1 << 20
local MAX_NUMERAL = 200  -- liolib's L_MAXLENNUM

-- nil, msg, errno. With `path` (open, stat, remove...), msg is "path: message" as from
-- io.open and os.remove; the file's methods give the message alone, as io's do.
local function fail(path, res)
  if path then return nil, path .. ": " .. strerror(res), -res end
  return nil, strerror(res), -res
end

-- Errno values luring.errno may not name (Linux's numbers otherwise).
local function errno_value(name, linux)
  local ok, v = pcall(function() return luring.errno[name] end)
  return ok and v or linux
end
local ENOTDIR, EISDIR, EPERM = errno_value("ENOTDIR", 20), errno_value("EISDIR", 21),
                               errno_value("EPERM", 1)

local File = {}
File.__index = File
File.__name = "luring.async.file"

-- Fields: fd; pos, the offset of the next byte for the user (nil after an append
-- write: the end, found with statx when needed); buf, read-ahead bytes starting at
-- file offset boff. Once closed, fd is -1 (getfd's answer, as a closed LuaSocket's):
-- the fast paths then find no descriptor and take the general path, which says the
-- file is closed, with no check of their own.
--
-- read_at and write_at are also the file's own fields: a call finds them without going
-- through the metatable (about 120 instructions of a 3200-instruction small write), and
-- a file that cannot read has no read-ahead for its write_at to drop.
local write_at_no_read_ahead  -- below, with File:write_at
local function new(fd, path, mode)
  local f = setmetatable({ fd = fd, path = path, pos = 0, buf = "", boff = 0,
                           closed = false,
                           append = mode:find("a", 1, true) ~= nil, ring = core.ring() }, File)
  local reads = mode:find("r", 1, true) or mode:find("+", 1, true)
  f.read_at = File.read_at
  f.write_at = reads and File.write_at or write_at_no_read_ahead
  core.track(f)
  return f
end

local function check_open(self, what)
  if getmetatable(self) ~= File then
    error("bad argument #1 to '" .. what .. "' (luring.async.file expected)", 3)
  end
  if self.closed then error("attempt to use a closed file", 3) end
end

-- The file's size (fstat through statx on the descriptor).
local function size_of(self, task)
  local res, st = await(task, start(luring.statx, self.fd, nil, task.cb))
  if res < 0 then return nil, res end
  return st.size
end

local function known_pos(self, task)
  if self.pos then return self.pos end
  local size, err = size_of(self, task)
  if not size then return nil, err end
  self.pos = size
  return size
end

-- Bytes available in the buffer from pos.
local function avail(self)
  local i = self.pos - self.boff
  if i < 0 or i > #self.buf then return 0 end
  return #self.buf - i
end

-- Reads more bytes after what is buffered from pos. true, false at end of file, or
-- nil, res on an error.
local function fill(self, task, size)
  local keep = avail(self)
  local at
  if keep > 0 then
    self.buf = sub(self.buf, self.pos - self.boff + 1)
    at = self.pos + keep
  else
    self.buf = ""
    at = self.pos
  end
  self.boff = self.pos
  local res, data = await(task, start(l_read, self.fd, size or READ_AHEAD, at, task.cb))
  if res < 0 then return nil, res end
  if res == 0 then return false end
  self.buf = keep > 0 and self.buf .. data or data
  return true
end

-- `n` bytes from pos (fewer at end of file), consumed.
local function take(self, n)
  local i = self.pos - self.boff + 1
  local data = sub(self.buf, i, i + n - 1)
  self.pos = self.pos + #data
  return data
end

local function read_line(self, task, keep_nl)
  local parts = nil  -- the start of a line longer than what was buffered
  while true do
    local i = self.pos - self.boff + 1
    local j = avail(self) > 0 and find(self.buf, "\n", i, true)
    if j then
      local line = sub(self.buf, i, keep_nl and j or j - 1)
      self.pos = self.pos + (j - i + 1)
      if parts then
        parts[#parts + 1] = line
        return concat(parts)
      end
      return line
    end
    if avail(self) > 0 then  -- set aside: each new block is searched once
      parts = parts or {}
      parts[#parts + 1] = take(self, avail(self))
    end
    local ok, err = fill(self, task, parts and READ_ALL or nil)
    if ok == nil then return nil, err end
    if not ok then return parts and concat(parts) or nil end
  end
end

local function read_all(self, task)
  local parts = { take(self, avail(self)) }
  while true do
    local ok, err = fill(self, task, READ_ALL)
    if ok == nil then return nil, err end
    if not ok then break end
    parts[#parts + 1] = take(self, avail(self))
  end
  return concat(parts)
end

local function read_count(self, task, n)
  if n == 0 then
    if avail(self) > 0 then return "" end
    local ok, err = fill(self, task)
    if ok == nil then return nil, err end
    return ok and "" or nil
  end
  while avail(self) < n do
    local ok, err = fill(self, task, n - avail(self) > READ_AHEAD and n - avail(self) or nil)
    if ok == nil then return nil, err end
    if not ok then break end
  end
  if avail(self) == 0 then return nil end
  return take(self, n)
end

-- read("n"), as liolib's read_number: at most 200 characters of a numeral (optional
-- sign, hex or decimal digits, a point, an exponent), then tonumber; nil if it is none.
local function read_number(self, task)
  local function peek()
    if avail(self) == 0 then
      local ok = fill(self, task)
      if not ok then return nil end
    end
    return byte(self.buf, self.pos - self.boff + 1)
  end
  local c = peek()
  while c and (c == 32 or (c >= 9 and c <= 13)) do  -- isspace
    self.pos = self.pos + 1
    c = peek()
  end
  local out, count = {}, 0
  local overflow = false  -- a numeral longer than liolib's buffer: it reads as no number
  local function accept(set)
    if c and find(set, string.char(c), 1, true) then
      if #out >= MAX_NUMERAL then
        overflow = true
        return false
      end
      out[#out + 1] = string.char(c)
      self.pos = self.pos + 1
      c = peek()
      return true
    end
    return false
  end
  local function digits(hex)
    local n = 0
    local set = hex and "0123456789abcdefABCDEF" or "0123456789"
    while accept(set) do n = n + 1 end
    return n
  end
  accept("-+")
  local hex = false
  if accept("0") then
    if accept("xX") then hex = true else count = 1 end
  end
  count = count + digits(hex)
  if accept(".") then count = count + digits(hex) end
  if count > 0 and accept(hex and "pP" or "eE") then
    accept("-+")
    digits(false)
  end
  if overflow then return nil end
  return tonumber(concat(out))
end

-- file:read(...): io's formats "n", "l", "L", "a" (with or without "*") and byte
-- counts; nil for the first that finds nothing, and none after it.
function File:read(...)
  check_open(self, "read")
  local task = need_task("read")
  local known, perr = known_pos(self, task)
  if not known then return fail(nil, perr) end
  local n = select("#", ...)
  local formats = n == 0 and { "l" } or { ... }
  if n == 0 then n = 1 end
  local out = {}
  for k = 1, n do
    local fmt = formats[k]
    local v, err
    if type(fmt) == "number" then  -- a count: an integer, or a float with an integer value
      local count = math.tointeger(fmt)
      if not count then
        error("bad argument #" .. k .. " to 'read' (number has no integer representation)", 2)
      end
      v, err = read_count(self, task, count)
    elseif type(fmt) == "string" then
      local f = sub(fmt, 1, 1) == "*" and sub(fmt, 2, 2) or sub(fmt, 1, 1)
      if f == "l" then
        v, err = read_line(self, task, false)
      elseif f == "L" then
        v, err = read_line(self, task, true)
      elseif f == "a" then
        v, err = read_all(self, task)
      elseif f == "n" then
        v = read_number(self, task)
      else
        error("bad argument #" .. k .. " to 'read' (invalid format)", 2)
      end
    else
      error("bad argument #" .. k .. " to 'read' (invalid format)", 2)
    end
    if err then return fail(nil, err) end
    out[k] = v
    if v == nil then return table.unpack(out, 1, k) end
  end
  return table.unpack(out, 1, n)
end

-- Writes all of `data` at `offset` (-1: the end, for append mode). bytes or nil, res.
local function write_all(task, fd, data, offset)
  local done, total = 0, #data
  while done < total do
    local piece = done == 0 and data or sub(data, done + 1)
    local res = await(task, start(l_write, fd, piece, offset < 0 and -1 or offset + done, task.cb))
    if res < 0 then return nil, res end
    if res == 0 then return nil, -luring.errno.EIO end
    done = done + res
  end
  return done
end

-- file:write(...): strings and numbers, in order, at the position. The file, or
-- nil, msg, errno.
function File:write(...)
  check_open(self, "write")
  local task = need_task("write")
  local n = select("#", ...)
  local parts = { ... }
  for k = 1, n do
    local v = parts[k]
    if math.type(v) == "integer" then
      parts[k] = ("%d"):format(v)
    elseif type(v) == "number" then
      parts[k] = ("%.14g"):format(v)
    elseif type(v) ~= "string" then
      error("bad argument #" .. k .. " to 'write' (string expected, got " .. type(v) .. ")", 2)
    end
  end
  local data = n == 1 and parts[1] or concat(parts, "", 1, n)
  self.buf, self.boff = "", 0  -- what was read ahead may be stale now
  if self.append then
    local ok, err = write_all(task, self.fd, data, -1)
    if not ok then return fail(nil, err) end
    self.pos = nil
  else
    local pos, perr = known_pos(self, task)
    if not pos then return fail(nil, perr) end
    local ok, err = write_all(task, self.fd, data, pos)
    if not ok then return fail(nil, err) end
    self.pos = pos + ok
  end
  return self
end

-- file:lines(...): an iterator reading with the given formats (default "l").
function File:lines(...)
  check_open(self, "lines")
  local n = select("#", ...)
  local formats = { ... }
  return function()
    if self.closed then error("file is already closed", 2) end
    if n == 0 then return self:read("l") end
    return self:read(table.unpack(formats, 1, n))
  end
end

-- file:seek([whence [, offset]]): "set", "cur" (default) or "end"; the new position.
function File:seek(whence, offset)
  check_open(self, "seek")
  local task = need_task("seek")
  whence = whence or "cur"
  offset = offset or 0
  if math.type(offset) ~= "integer" then
    error("bad argument #2 to 'seek' (number has no integer representation)", 2)
  end
  local base, err
  if whence == "set" then
    base = 0
  elseif whence == "cur" then
    base, err = known_pos(self, task)
  elseif whence == "end" then
    base, err = size_of(self, task)
  else
    error("bad argument #1 to 'seek' (invalid option '" .. tostring(whence) .. "')", 2)
  end
  if not base then return fail(nil, err) end
  local pos = base + offset
  if pos < 0 then return fail(nil, -luring.errno.EINVAL) end
  self.pos = pos
  -- What was read ahead is dropped: a read after a seek sees the file as it is now
  -- (another descriptor or process may have written it), as read(2) after lseek would.
  self.buf, self.boff = "", 0
  return pos
end

function File:sync()
  check_open(self, "sync")
  local task = need_task("sync")
  local h = start(core.ring().fsync, self.fd, false, task.cb)
  local res = await(task, h)
  if res < 0 then return fail(nil, res) end
  return self
end

function File:flush()
  check_open(self, "flush")
  return self
end

function File:setvbuf()
  check_open(self, "setvbuf")
  return true
end

local function check_n_offset(self, n, offset, what, first)
  check_open(self, what)
  if first == "size" and (math_type(n) ~= "integer" or n < 0) then
    error("bad argument #1 to '" .. what .. "' (size expected)", 3)
  end
  if first == "size" and n > MAX_TRANSFER then
    error("bad argument #1 to '" .. what .. "' (size must be at most " .. MAX_TRANSFER .. ")", 3)
  end
  if first == "data" and type(n) ~= "string" then
    error("bad argument #1 to '" .. what .. "' (string expected, got " .. type(n) .. ")", 3)
  end
  if math_type(offset) ~= "integer" or offset < 0 then
    error("bad argument #2 to '" .. what .. "' (offset expected)", 3)
  end
  return need_task(what)
end

-- The rest of a read_at after a short first read: up to n bytes in all.
local function read_rest(self, task, n, offset, parts, got)
  while got < n do
    local res, data = await(task, start(l_read, self.fd, n - got, offset + got, task.cb))
    if res < 0 then return fail(nil, res) end
    if res == 0 then break end
    parts[#parts + 1] = data
    got = got + res
  end
  if got == 0 and n > 0 then return nil end
  return concat(parts)
end

-- The end of a read_at whose first request gave `res` (not n): an error, the end of the
-- file, or a short read whose rest is read now.
local function read_end(self, task, n, offset, res, data)
  if res < 0 then return fail(nil, res) end
  if res == 0 then return n == 0 and "" or nil end
  return read_rest(self, task, n, offset, { data }, res)
end

-- read_at the general way: every check with its error, a full SQ retried.
local function read_at_slow(self, n, offset)
  local task = check_n_offset(self, n, offset, "read_at", "size")
  if task.alert then before_wait(task) end
  local h = start_for(self, l_read, self.fd, n, offset, task.cb)
  if not h then return nil, "file is closed" end
  local res, data = await(task, h)
  if res == n then return data end
  return read_end(self, task, n, offset, res, data)
end

-- The end of a fast read_at that did not read all n bytes, or whose task must notice a
-- cancel or deadline first (cqe false).
local function read_at_finish(self, n, offset, cqe, res, data)
  local task = task_of[co_running()]
  if cqe == false then res, data = after_wait(task, false, res, data) end
  if res == n then return data end
  return read_end(self, task, n, offset, res, data)
end

-- file:read_at(n, offset): up to n bytes at offset (fewer only at end of file), nil at
-- end of file. The position does not move. The hot path of a copy: one call of
-- core.aw.read queues the request and waits for it (nothing returned: it did nothing,
-- as when an argument is wrong; the general path then says which).
function File:read_at(n, offset)
  local cqe, res, data = aw_read(self.ring, self.fd, n, offset)
  if cqe and res == n then return data end
  if cqe ~= nil then return read_at_finish(self, n, offset, cqe, res, data) end
  return read_at_slow(self, n, offset)
end

-- The end of a write_at whose first request wrote `res` bytes: the file, an error, or
-- the rest written now.
local function write_end(self, task, data, offset, res)
  if res == #data then return self end
  if res < 0 then return fail(nil, res) end
  local ok, err = write_all(task, self.fd, sub(data, res + 1), offset + res)
  if not ok then return fail(nil, err) end
  return self
end

local function write_at_slow(self, data, offset)
  local task = check_n_offset(self, data, offset, "write_at", "data")
  if task.alert then before_wait(task) end
  if self.buf ~= "" then self.buf, self.boff = "", 0 end  -- read-ahead may be stale now
  local h = start_for(self, l_write, self.fd, data, offset, task.cb)
  if not h then return nil, "file is closed" end
  return write_end(self, task, data, offset, await(task, h))
end

local function write_at_finish(self, data, offset, cqe, res)
  local task = task_of[co_running()]
  if cqe == false then res = after_wait(task, false, res) end
  if res == #data then return self end
  return write_end(self, task, data, offset, res)
end

-- write_at of a file opened without read access (new), which never reads ahead; the
-- rest of write_at for the others.
function write_at_no_read_ahead(self, data, offset)
  local cqe, res = aw_write(self.ring, self.fd, data, offset)
  if cqe and res == #data then return self end
  if cqe ~= nil then return write_at_finish(self, data, offset, cqe, res) end
  return write_at_slow(self, data, offset)
end

-- file:write_at(data, offset): writes all of data at offset; the position does not
-- move. The file, or nil, msg, errno. The fast path as read_at's.
function File:write_at(data, offset)
  if self.buf ~= "" then self.buf, self.boff = "", 0 end
  return write_at_no_read_ahead(self, data, offset)
end

-- The buffer forms: bytes at..at+len-1 of a luring.buffer (at default 1, len default
-- the rest of it), so a copy moves its data without a Lua string per chunk.
local l_read_into, l_write_from = luring.read_into, luring.write_from
local BUFFER_MT = getmetatable(luring.buffer(1))

local function check_buffer_call(buf, offset, len, at, what)
  if getmetatable(buf) ~= BUFFER_MT then
    error("bad argument #1 to '" .. what .. "' (luring.buffer expected, got " .. type(buf) ..
          ")", 3)
  end
  if math_type(offset) ~= "integer" or offset < 0 then
    error("bad argument #2 to '" .. what .. "' (offset expected)", 3)
  end
  at = at or 1
  if math_type(at) ~= "integer" or at < 1 or at > #buf then
    error("bad argument #4 to '" .. what .. "' (position out of the buffer)", 3)
  end
  len = len or #buf - at + 1
  if math_type(len) ~= "integer" or len < 0 or len > #buf - at + 1 then
    error("bad argument #3 to '" .. what .. "' (length past the end of the buffer)", 3)
  end
  return need_task(what), len, at
end

-- file:read_into(buf, offset [, len [, at]]): reads up to len bytes at offset into the
-- buffer from position at (fewer only at end of file). The bytes read (0 at end of
-- file), or nil, msg, errno.
function File:read_into(buf, offset, len, at)
  local task
  task, len, at = check_buffer_call(buf, offset, len, at, "read_into")
  if task.alert then before_wait(task) end
  local got = 0
  while got < len do
    local h = start_for(self, l_read_into, self.fd, buf, offset + got, len - got, at + got,
                        task.cb)
    if not h then return nil, "file is closed" end
    local res = await(task, h)
    if res < 0 then return fail(nil, res) end
    if res == 0 then break end
    got = got + res
  end
  return got
end

-- file:write_from(buf, offset [, len [, at]]): writes len bytes of the buffer from
-- position at to the file at offset; the position does not move. The file, or nil,
-- msg, errno.
function File:write_from(buf, offset, len, at)
  local task
  task, len, at = check_buffer_call(buf, offset, len, at, "write_from")
  if task.alert then before_wait(task) end
  if self.buf ~= "" then self.buf, self.boff = "", 0 end  -- read-ahead may be stale now
  local done = 0
  repeat
    local h = start_for(self, l_write_from, self.fd, buf, offset + done, len - done,
                        at + done, task.cb)
    if not h then return nil, "file is closed" end
    local res = await(task, h)
    if res < 0 then return fail(nil, res) end
    if res == 0 and len > 0 then return fail(nil, -luring.errno.EIO) end
    done = done + res
  until done >= len
  return self
end

-- Another task's read or write of this file may still be only queued: it is submitted
-- before the descriptor is closed, or the kernel would read its number as whatever
-- file reused it at once (a write would land there). Under SQPOLL the poller reads the
-- SQ when it likes, so the ring closes the descriptor itself, behind it (IORING_OP_CLOSE).
function File:close()
  if self.closed then return nil, "file is already closed" end
  local fd = self.fd
  self.closed, self.fd = true, -1
  local loop = core.loop()
  if loop and loop.sqpoll then
    core.close_behind(fd)
  else
    if loop then loop.ring:submit() end
    luring.close_fd_now(fd)
  end
  core.untrack(self)
  return true
end

function File:__close()
  if not self.closed then self:close() end
end

function File:__gc()
  if not self.closed then luring.close_fd_now(self.fd) end
end

function File:__tostring()
  if self.closed then return "file (closed)" end
  return ("file (fd %d)"):format(self.fd)
end

function File:getfd() return self.fd end

-- ---- async.open and the path operations ----

local function check_path(path, k, what)
  if type(path) ~= "string" then
    error(("bad argument #%d to '%s' (string expected, got %s)"):format(k, what, type(path)), 3)
  end
end

function file.open(path, mode)
  check_path(path, 1, "open")
  mode = mode or "r"
  if type(mode) ~= "string" or not mode:match("^[rwa]%+?b*$") then
    error("bad argument #2 to 'open' (invalid mode)", 2)
  end
  local task = need_task("open")
  local h = start(core.ring().openat, path, (mode:gsub("b", "")), nil, task.cb)
  local res = await(task, h, nil, true)
  if res < 0 then return fail(path, res) end
  local f = new(res, path, mode)
  -- "a": the position is the end. "a+": reads start at the beginning (as glibc's fopen
  -- has it), writes still go to the end (O_APPEND).
  if f.append and not mode:find("+", 1, true) then f.pos = nil end
  return f
end

function file.stat(path)
  check_path(path, 1, "stat")
  local task = need_task("stat")
  local h = start(core.ring().statx, path, nil, task.cb)
  local res, st = await(task, h)
  if res < 0 then return fail(path, res) end
  return st
end

function file.remove(path)
  check_path(path, 1, "remove")
  local task = need_task("remove")
  local ring = core.ring()
  local res = await(task, start(ring.unlinkat, path, false, task.cb))
  -- os.remove removes empty directories too.
  if res == -EISDIR or res == -EPERM then
    local again = await(task, start(ring.unlinkat, path, true, task.cb))
    if again ~= -ENOTDIR then res = again end
  end
  if res < 0 then return fail(path, res) end
  return true
end

function file.rename(from, to)
  check_path(from, 1, "rename")
  check_path(to, 2, "rename")
  local task = need_task("rename")
  local res = await(task, start(core.ring().renameat, from, to, nil, task.cb))
  if res < 0 then return fail(from, res) end
  return true
end

function file.mkdir(path, mode)
  check_path(path, 1, "mkdir")
  local task = need_task("mkdir")
  local res = await(task, start(core.ring().mkdirat, path, mode or 511, task.cb))
  if res < 0 then return fail(path, res) end
  return true
end

file.File = File

return file
