-- SPDX-License-Identifier: Apache-2.0
-- LuaSocket-compatible stream sockets for luring.async: receive, send, settimeout and
-- the rest behave as LuaSocket's tcp objects do, but every wait is an io_uring request
-- of the calling task. Received data is buffered per socket, so one recv serves many
-- receive("*l") calls.
local luring = require "luring"
local core = require "luring.async.core"

local need_task, start, await, now = core.need_task, core.start, core.await, core.now
local block, wake_blocked = core.block, core.wake_blocked
local start_for, arm_deadline, set_io_deadline = core.start_for, core.arm_deadline,
                                                core.set_io_deadline
local task_of, after_wait, before_wait = core.task_of, core.after_wait, core.before_wait
local find, sub, gsub, byte, concat = string.find, string.sub, string.gsub, string.byte,
                                      table.concat
local co_running = coroutine.running
local math_type = math.type
local strerror = luring.strerror
local errno = luring.errno
local l_recv, l_send = luring.recv, luring.send
local aw_recv, aw_send, aw_recv_until = core.aw.recv, core.aw.send, core.aw.recv_until
local aw_send_now = core.aw.send_now

local socket = {}

local RECV_SIZE = 65536
-- A multishot recv stops (is cancelled) when this much is buffered and nobody reads;
-- the next receive that needs more arms it again.
local RECV_HIGH = 4 * RECV_SIZE
local ECANCELED, ENOBUFS, EINVAL = -errno.ECANCELED, -errno.ENOBUFS, -errno.EINVAL
local SEND_PIECE = 1 << 20  -- more than a socket buffer takes at once
local MSG_NOSIGNAL = luring.msg.NOSIGNAL
-- core.aw.recv_until's modes (src/lua/ops_io.cpp): the part before the delimiter, the
-- part with it, a line.
local UNTIL_BEFORE <const>, UNTIL_WITH <const>, UNTIL_LINE <const> = 0, 1, 2

-- LuaSocket's words for the errors its users test for; strerror for the rest.
local messages = {
  [-errno.ECONNRESET] = "closed",
  [-errno.EPIPE] = "closed",
  [-errno.ENOTCONN] = "closed",
  [-errno.ECONNREFUSED] = "connection refused",
  [-errno.ETIMEDOUT] = "timeout",
  [-errno.EADDRINUSE] = "address already in use",
}
local function message(res)
  return messages[res] or strerror(res)
end

-- ---- Names to addresses, without blocking ----

local function is_ipv4(host) return find(host, "^%d+%.%d+%.%d+%.%d+$") ~= nil end

-- The hosts file names are looked up in (a field, so tests can use their own).
socket.hosts_file = "/etc/hosts"

-- The addresses of `host` in the hosts file, IPv4 ones first.
local function from_hosts_file(host)
  local f = io.open(socket.hosts_file)
  if not f then return nil end
  local v4, v6
  for line in f:lines() do
    line = gsub(line, "#.*", "")
    local addr, names = line:match("^%s*(%S+)%s+(.+)$")
    if addr then
      for name in names:gmatch("%S+") do
        if name == host then
          if is_ipv4(addr) then v4 = v4 or addr else v6 = v6 or addr end
        end
      end
    end
  end
  f:close()
  if v4 then return "inet", v4 end
  if v6 then return "inet6", v6 end
  return nil
end

-- family, address for `host`: IPv4 and IPv6 literals, "localhost", "*" (any address,
-- for bind), and names in /etc/hosts. Other names are not resolved (that would need a
-- DNS client): nil, "host not found".
function socket.resolve(host, want_family)
  if type(host) ~= "string" then return nil, "host not found" end
  if host == "*" then
    return want_family or "inet", want_family == "inet6" and "::" or "0.0.0.0"
  end
  if host == "localhost" then
    if want_family == "inet6" then return "inet6", "::1" end
    return "inet", "127.0.0.1"
  end
  if is_ipv4(host) then return "inet", host end
  if find(host, ":", 1, true) then return "inet6", (gsub(host, "^%[(.*)%]$", "%1")) end
  local family, addr = from_hosts_file(host)
  if family then return family, addr end
  return nil, "host not found"
end
local resolve = socket.resolve

-- ---- The socket object ----

local Socket = {}
Socket.__index = Socket
Socket.__name = "luring.async.socket"

-- The ring of the running loop, remembered: a socket made outside run (async.wrap) has
-- none until it is used inside one.
local function ring_of(self)
  local ring = core.ring()
  self.ring = ring
  return ring
end

-- count_pattern before any count receive: a value no caller can pass as a pattern.
local NO_COUNT = {}

local function new(fd, kind, family)
  -- p1, p2: handles of requests pending on the socket, false when none. Never nil: a
  -- field that keeps going nil and back makes the table rehash on every request.
  -- rx: how it receives, decided by the first receive that waits: "multishot" (one
  -- multishot recv, handle ms, feeding buf; a task waiting for it is waiter) or
  -- "single" (a recv request per wait). eof, rx_err: how the multishot recv ended.
  -- sending: requests writing to the stream queued or in flight (see wait_writing).
  local s = setmetatable({ fd = fd, kind = kind, family = family, buf = "", pos = 1,
                           timeout = nil, closed = false, ring = core.loop_ring(),
                           p1 = false, p2 = false, count_pattern = NO_COUNT, rx = false,
                           ms = false, waiter = false, eof = false, rx_err = false,
                           sending = 0 }, Socket)
  -- The hot methods as the socket's own fields: a call finds them without going through
  -- the metatable (about 120 instructions a call; a ping-pong round trip makes four).
  s.send, s.receive = Socket.send, Socket.receive
  if fd then core.track(s) end
  return s
end
socket.new = new

-- The requests pending on the socket, which close() cancels: several tasks may wait on
-- one socket at once (one receiving while another sends), so two fields, then a set.
local function note_pending(self, h)
  if not self.p1 then
    self.p1 = h
  elseif not self.p2 then
    self.p2 = h
  else
    local set = self.pset
    if not set then
      set = {}
      self.pset = set
    end
    set[h] = true
  end
end
local function clear_pending(self, h)
  if self.p1 == h then
    self.p1 = false
  elseif self.p2 == h then
    self.p2 = false
  elseif self.pset then
    self.pset[h] = nil
  end
end

-- One recv by core.aw: cqe, res, data as aw's, or nothing when the general path is
-- needed. With the socket's timeout, the task's deadline is armed around it
-- (core.arm_deadline): when it passes, the request is cancelled and the caller's
-- after_wait turns it into res nil.
local function recv_once(self)
  local t = self.timeout
  if not t then return aw_recv(self.ring, self.fd, RECV_SIZE, 0, self, "p1") end
  local task = arm_deadline(t)
  local cqe, res, data = aw_recv(self.ring, self.fd, RECV_SIZE, 0, self, "p1")
  if task then task.io_deadline = false end
  return cqe, res, data
end
-- The same for a send of all of data under the socket's timeout `t` (Socket:send calls
-- aw.send itself when there is none). A send the socket takes at once (aw.send_now)
-- needs no deadline.
local function send_timed(self, data, t)
  local cqe, res = aw_send_now(self.ring, self.fd, data, MSG_NOSIGNAL, self, "p2")
  if cqe ~= nil then return cqe, res end
  local task = arm_deadline(t)
  cqe, res = aw_send(self.ring, self.fd, data, MSG_NOSIGNAL, self, "p2")
  if task then task.io_deadline = false end
  return cqe, res
end

-- Waits for the request `h` of `task` on this socket, noting it so close() can cancel it.
local function wait_on(self, task, h, deadline, makes_fd)
  note_pending(self, h)
  local res, a, b = await(task, h, deadline, makes_fd)
  clear_pending(self, h)
  return res, a, b
end

-- wait_on for a request that writes to the stream (a send of the general path, a
-- shutdown): counted in self.sending while it is queued or in flight, as no send may go
-- at once by send(2) then (aw.send): it would overtake the request.
local function wait_writing(self, task, h, deadline)
  self.sending = self.sending + 1
  local ok, res = pcall(wait_on, self, task, h, deadline)
  self.sending = self.sending - 1
  if not ok then error(res, 0) end
  return res
end

-- Makes the descriptor, if this is an unconnected object (async.tcp()) that has none.
local function ensure_fd(self, task, family, kind)
  if self.fd then return true end
  local ring = core.ring()
  local h = start(ring.socket, family, kind or "stream", 0, task.cb)
  local res = wait_on(self, task, h, nil, true)
  if res < 0 then return nil, message(res) end
  self.fd = res
  self.family = family
  self.ring = ring  -- an object made outside run gets the ring it is used in
  core.track(self)
  if self.options then
    for _, o in ipairs(self.options) do luring.setsockopt(res, o[1], o[2]) end
    self.options = nil
  end
  return true
end

function Socket:deadline()
  local t = self.timeout
  if t then return now() + t end
  return nil
end

-- What a recv brought (res, data; res nil: timed out), into the buffer. Returns nil, or
-- an error word.
local function filled(self, res, data)
  if res == nil then return "timeout" end
  if self.closed then return "closed" end
  if res <= 0 then return res == 0 and "closed" or message(res) end
  local pos = self.pos
  if pos > #self.buf then
    self.buf = data
  else
    self.buf = sub(self.buf, pos) .. data
  end
  self.pos = 1
  return nil
end

-- The receive fast paths' recv (receive('*l'), receiveuntil): one by core.aw, the
-- socket's timeout armed around it. When the bytes are one whole part (a line, or up to
-- a delimiter that is at their end and nowhere before), the C side hands back that part
-- alone: "whole", part, nothing buffered. Else true (the bytes buffered), or an error
-- word; nil when core.aw declined (the caller takes its general path). mode: one of
-- UNTIL_BEFORE, UNTIL_WITH, UNTIL_LINE (pat "\n").
local function fill_fast(self, pat, mode)
  local t, task = self.timeout, nil
  if t then task = arm_deadline(t) end
  local cqe, res, data, whole = aw_recv_until(self.ring, self.fd, RECV_SIZE, 0, pat, mode,
                                              self, "p1")
  if task then task.io_deadline = false end
  if cqe == nil then return nil end
  self.p1 = false
  if cqe == false then
    res, data, whole = after_wait(task_of[co_running()], false, res, data, whole)
  end
  if whole and not self.closed then return "whole", data end
  return filled(self, res, data) or true
end

-- Receives more bytes into the buffer. Returns nil, or an error word. The wait is by
-- core.aw where it can be (the hot path of every receive), noted in self.p1 for close()
-- to cancel; `deadline` is then the task's (core.set_io_deadline).
local function fill_single(self, task, deadline)
  -- (Not recv_once: the deadline is the whole call's, not the socket's timeout from now.)
  if deadline then set_io_deadline(task, deadline) end
  local cqe, res, data = aw_recv(self.ring, self.fd, RECV_SIZE, 0, self, "p1")
  if deadline then task.io_deadline = false end
  if cqe ~= nil then
    self.p1 = false
    if cqe == false then res, data = after_wait(task, false, res, data) end
    return filled(self, res, data)
  end
  if task.alert then before_wait(task) end
  if not self.ring then ring_of(self) end
  local h = start_for(self, l_recv, self.fd, RECV_SIZE, 0, task.cb)
  if not h then return "closed" end
  return filled(self, wait_on(self, task, h, deadline))
end

-- By the socket's multishot recv where the run has it (see fill_multishot), else by a
-- recv request per call (fill_single).
local fill_multishot
local function fill(self, task, deadline)
  local rx = self.rx
  if rx ~= "single" then
    if rx == "multishot" or core.loop().recv_multishot then
      return fill_multishot(self, task, deadline)
    end
    self.rx = "single"
  end
  return fill_single(self, task, deadline)
end

-- ---- Receiving by multishot recv: one request per socket, each chunk into buf ----

-- A chunk (or the end) of the socket's multishot recv. Appends the data; stops the
-- request when RECV_HIGH is buffered; wakes the task waiting for data.
local function on_chunk(self, res, data, more)
  if not more then self.ms = false end
  if res > 0 and not self.closed then
    local pos = self.pos
    if pos > #self.buf then
      self.buf, self.pos = data, 1
    elseif pos > 1 then
      self.buf, self.pos = sub(self.buf, pos) .. data, 1
    else
      self.buf = self.buf .. data
    end
    self.rx_ok = true
    if more and #self.buf >= RECV_HIGH and not self.ms_stopping then
      self.ms_stopping = true
      core.cancel_request(self.ms)
    end
  elseif res == 0 then
    self.eof = true
  elseif res == EINVAL and not self.rx_ok then
    -- This kernel has no multishot recv (before 6.0): every socket of the run receives
    -- by single recvs from now on.
    core.loop().recv_multishot = false
    self.rx = "single"
  elseif res ~= ECANCELED and res ~= ENOBUFS and res < 0 then
    self.rx_err = res
  end
  if not more then self.ms_stopping = false end
  local task = self.waiter
  if task then
    self.waiter = false
    wake_blocked(task, self)
  end
end

-- The callback of the socket's multishot recv (one closure per socket, made once).
local function chunk_callback(self)
  local cb = self.ms_cb
  if not cb then
    cb = function(_, res, data, more) return on_chunk(self, res, data, more) end
    self.ms_cb = cb
  end
  return cb
end

-- A task blocked in fill_multishot leaves when interrupted (cancel, async.timeout).
function Socket:remove_waiter(task)
  if self.waiter == task then self.waiter = false end
end

-- fill by the multishot recv: arms it if it is not, waits until the buffer has more
-- bytes than it had, the stream ended, or the deadline passed. Returns nil, or an error
-- word. A wait that raises (cancel) loses nothing: the data stays buffered.
function fill_multishot(self, task, deadline)
  self.rx = "multishot"
  local had = #self.buf - self.pos
  while true do
    if self.closed then return "closed" end
    if #self.buf - self.pos > had then return nil end
    if self.eof then return "closed" end
    local err = self.rx_err
    if err then return message(err) end
    -- The kernel said no; or another task waits on this socket already: a recv of our
    -- own then, whose data goes to the same buffer.
    if self.rx == "single" or self.waiter then return fill_single(self, task, deadline) end
    local ring = core.ring()
    -- A multishot recv of an earlier run (a socket made outside run, used in two) ended
    -- with its ring, whose close reaped it without a callback.
    if self.ms and self.ms_ring ~= ring then self.ms, self.ms_stopping = false, false end
    if not self.ms then
      if not self.ring then ring_of(self) end
      -- Armed from here on (true until the handle comes: start_for may wait for room in
      -- the SQ, and another task must not arm a second one meanwhile).
      self.ms, self.ms_ring = true, ring
      local ok, h = pcall(start_for, self, ring.recv_multishot, self.fd, 0, chunk_callback(self))
      if not ok or not h then
        self.ms = false
        if not ok then error(h, 0) end  -- cancelled while it waited for room
        return "closed"
      end
      self.ms = h
      if self.waiter then return fill_single(self, task, deadline) end  -- (as above)
    end
    self.waiter = task
    if not block(task, self, deadline) then
      -- The timer already let go of this task; another may be the waiter by now.
      if self.waiter == task then self.waiter = false end
      return "timeout"
    end
  end
end

-- fill, for a receive that has set data aside in parts[from..]: if the wait raises (a
-- cancel, an expired async.timeout), that data goes back in front of the buffer, so the
-- next receive still gets it.
local function fill_keeping(self, task, deadline, parts, from)
  local ok, err = pcall(fill, self, task, deadline)
  if ok then return err end
  local kept = concat(parts, "", from)
  if kept ~= "" then
    self.buf = kept .. sub(self.buf, self.pos)
    self.pos = 1
  end
  error(err, 0)
end

-- Everything buffered, consumed.
local function take_all(self)
  local data = sub(self.buf, self.pos)
  self.buf, self.pos = "", 1
  return data
end

-- LuaSocket's "*l" drops every CR of the line; usually there is one, at its end.
local function strip_cr(line)
  local i = find(line, "\r", 1, true)
  if not i then return line end
  if i == #line then return sub(line, 1, -2) end
  return (gsub(line, "\r", ""))
end

-- sock:receive([pattern [, prefix]]): LuaSocket's semantics. "*l" (default): a line
-- without its "\n" (and without any "\r"); "*a": everything until the peer closes; a
-- number: exactly that many bytes, counting the prefix (LuaSocket 3: receive(5, "ab")
-- reads 3 more). data, or nil, err, partial ("timeout", "closed"). "*a" that gets no
-- byte at all before the close is nil, "closed" too, as LuaSocket's.
function Socket:receive(pattern, prefix)
  -- The hot path of a request-response protocol: a byte count this socket was asked for
  -- before (so known to be valid: count_pattern), no prefix, nothing buffered, and one
  -- recv that brings exactly that many bytes.
  if pattern == self.count_pattern and prefix == nil and self.pos > #self.buf and
     not self.closed and self.rx == "single" then
    local cqe, res, data = recv_once(self)
    if cqe ~= nil then
      self.p1 = false
      if cqe == false then res, data = after_wait(task_of[co_running()], false, res, data) end
      if res == pattern and not self.closed then return data end
      -- More or fewer bytes: the general way below takes them from the buffer.
      local err = filled(self, res, data)
      if err then return nil, err, take_all(self) end
    end
  end
  -- The hot path of a line protocol (HTTP headers): a whole line buffered, or nothing
  -- buffered and one recv by core.aw that brings the line (no task lookup either way).
  if prefix == nil and (pattern == nil or pattern == "*l" or pattern == "l") and
     not self.closed then
    local buf, pos = self.buf, self.pos
    local i
    if pos <= #buf then
      i = find(buf, "\n", pos, true)
    elseif self.rx == "single" then  -- (nothing buffered: no find to call)
      local got, line = fill_fast(self, "\n", UNTIL_LINE)
      if got == "whole" then return line end
      if got ~= nil then
        if got ~= true then return nil, got, "" end
        buf, pos = self.buf, self.pos
        i = find(buf, "\n", pos, true)
      end
    end
    if i then
      self.pos = i + 1
      local e = i - 1
      if e >= pos and byte(buf, e) == 13 then e = e - 1 end  -- the CR of CRLF
      local line = sub(buf, pos, e)
      if find(line, "\r", 1, true) then line = (gsub(line, "\r", "")) end
      return line
    end
  end
  local task = task_of[co_running()] or need_task("receive")
  if prefix ~= nil and type(prefix) ~= "string" then
    if type(prefix) ~= "number" then
      error("bad argument #2 to 'receive' (string expected, got " .. type(prefix) .. ")", 2)
    end
    prefix = tostring(prefix)
  end
  if self.closed or not self.fd then return nil, "closed", prefix and prefix or "" end
  pattern = pattern or "*l"
  prefix = prefix or ""
  local deadline = self.timeout and now() + self.timeout or nil
  -- A number, or a string that is one (lua_isnumber); the named patterns first, as
  -- tonumber would parse them.
  local count = pattern ~= "*l" and pattern ~= "l" and pattern ~= "*a" and pattern ~= "a" and
                tonumber(pattern)
  if count then
    count = count >= 0 and math.tointeger(count // 1)
    if not count then error("bad argument #1 to 'receive' (invalid receive pattern)", 2) end
    if math_type(pattern) == "integer" and pattern > 0 then self.count_pattern = pattern end
    local had = #prefix
    if had > 0 and count <= had then return prefix end
    local want = count - had
    if want == 0 then  -- receive(0): "" once something is there (or the close's error)
      if self.pos > #self.buf then
        local err = fill(self, task, deadline)
        if err then return nil, err, prefix end
      end
      return prefix
    end
    if #self.buf - self.pos + 1 < want then
      local err = fill(self, task, deadline)  -- usually one recv brings it all
      if err then return nil, err, prefix .. take_all(self) end
      if #self.buf - self.pos + 1 < want then
        -- Many chunks: collect them (growing one string would copy it for each).
        local parts, got = { prefix }, 0
        while true do
          local have = #self.buf - self.pos + 1
          if got + have >= want then break end
          parts[#parts + 1] = take_all(self)
          got = got + have
          err = fill_keeping(self, task, deadline, parts, 2)
          if err then return nil, err, concat(parts) end
        end
        local p, need = self.pos, want - got
        parts[#parts + 1] = sub(self.buf, p, p + need - 1)
        self.pos = p + need
        return concat(parts)
      end
    end
    local p, buf = self.pos, self.buf
    if p == 1 and #buf == want then  -- exactly what was asked for: no copy
      self.buf = ""
      return prefix == "" and buf or prefix .. buf
    end
    self.pos = p + want
    return prefix .. sub(buf, p, p + want - 1)
  elseif pattern == "*l" or pattern == "l" then
    local parts = nil  -- the start of a line longer than what was buffered
    while true do
      local buf, pos = self.buf, self.pos
      local i = find(buf, "\n", pos, true)
      if i then
        local line = sub(buf, pos, i - 1)
        self.pos = i + 1
        if parts then
          parts[#parts + 1] = line
          line = concat(parts)
        end
        return prefix .. strip_cr(line)
      end
      if pos <= #buf then  -- set aside: each new chunk is searched once
        parts = parts or {}
        parts[#parts + 1] = take_all(self)
      end
      local err
      if parts then
        err = fill_keeping(self, task, deadline, parts, 1)
      else
        err = fill(self, task, deadline)
      end
      if err then return nil, err, prefix .. strip_cr(parts and concat(parts) or "") end
    end
  elseif pattern == "*a" or pattern == "a" then
    local first = take_all(self)
    local parts, got = { prefix, first }, #first
    while true do
      local err = fill_keeping(self, task, deadline, parts, 2)
      local data = take_all(self)
      parts[#parts + 1] = data
      got = got + #data
      if err == "closed" and got > 0 then return concat(parts) end
      if err then return nil, err, concat(parts) end
    end
  end
  error("bad argument #1 to 'receive' (invalid receive pattern)", 2)
end

-- sock:send(data [, i [, j]]): sends all of data:sub(i, j). The index of the last byte
-- sent, or nil, err, last.
function Socket:send(data, i, j)
  -- The hot path: a whole string, sent at once by aw.send's send(2) when the socket has
  -- room, else by one request of core.aw (noted in self.p2 for close() to cancel); not
  -- while a request writing to the stream is queued or in flight (self.sending).
  if i == nil and j == nil and not self.closed and self.sending == 0 then
    local cqe, res
    local t = self.timeout
    if t then
      cqe, res = send_timed(self, data, t)
    else
      cqe, res = aw_send(self.ring, self.fd, data, MSG_NOSIGNAL, self, "p2")
    end
    if cqe ~= nil then
      self.p2 = false
      if cqe == false then res = after_wait(task_of[co_running()], false, res) end
      local len = #data
      if res == len then return len end
      if res == nil then return nil, "timeout", 0 end  -- its deadline cancelled it
      -- Closed meanwhile: what the request sent anyway still counts (LuaSocket's last).
      if self.closed then return nil, "closed", res > 0 and res or 0 end
      if res < 0 then return nil, message(res), 0 end
      return self:send(data, res + 1)  -- the rest, the general way
    end
  end
  local task = task_of[co_running()] or need_task("send")
  if not self.ring then ring_of(self) end
  local t = type(data)
  if t == "number" then
    data = tostring(data)
  elseif t ~= "string" then
    error("bad argument #1 to 'send' (string expected, got " .. t .. ")", 2)
  end
  local len = #data
  i = i or 1
  j = j or len
  if i < 0 then i = len + i + 1 end
  if j < 0 then j = len + j + 1 end
  if i < 1 then i = 1 end
  if j > len then j = len end
  if self.closed or not self.fd then return nil, "closed", i - 1 end
  local chunk = (i == 1 and j == len) and data or sub(data, i, j)
  local total, sent = #chunk, 0
  local deadline = self.timeout and now() + self.timeout or nil
  while sent < total do
    -- The whole string first (pinned, not copied); after a short send, the rest in
    -- pieces of at most SEND_PIECE: copying all the rest each time was quadratic.
    local piece = sent == 0 and chunk or sub(chunk, sent + 1, sent + SEND_PIECE)
    local h = start_for(self, l_send, self.fd, piece, MSG_NOSIGNAL, task.cb)
    if not h then return nil, "closed", i + sent - 1 end
    local res = wait_writing(self, task, h, deadline)
    if res == nil then return nil, "timeout", i + sent - 1 end
    if res > 0 then sent = sent + res end  -- counted even if the socket closed meanwhile
    if sent < total then  -- all sent is success, as on the fast path, closed or not
      if self.closed then return nil, "closed", i + sent - 1 end
      if res < 0 then return nil, message(res), i + sent - 1 end
    end
  end
  return i + total - 1
end

-- sock:lines(): an iterator over received lines; it stops when the peer closes.
function Socket:lines()
  return function()
    local line = self:receive("*l")
    return line
  end
end

-- The bytes before the next `pat` in the stream (with it when `inclusive`), the pattern
-- consumed; or nil, err, partial (everything received up to the error, consumed).
local function receive_until(self, pat, inclusive)
  -- The hot path of a request protocol: the delimiter buffered already, or nothing
  -- buffered and one recv by core.aw that brings it (no task lookup either way).
  if not self.closed then
    local buf, pos = self.buf, self.pos
    local i, j
    if pos <= #buf then
      i, j = find(buf, pat, pos, true)
    elseif self.rx == "single" then  -- (nothing buffered: no find to call)
      local got, part = fill_fast(self, pat, inclusive and UNTIL_WITH or UNTIL_BEFORE)
      if got == "whole" then return part end
      if got ~= nil then
        if got ~= true then return nil, got, "" end
        buf, pos = self.buf, self.pos
        i, j = find(buf, pat, pos, true)
      end
    end
    if i then
      self.pos = j + 1
      return sub(buf, pos, inclusive and j or i - 1)
    end
  end
  local task = task_of[co_running()] or need_task("receiveuntil")
  if self.closed or not self.fd then return nil, "closed", "" end
  local deadline = self.timeout and now() + self.timeout or nil
  -- The buffered bytes already searched: each new chunk is searched once, from the last
  -- #pat - 1 bytes before it (a delimiter may straddle two chunks). The buffer keeps
  -- them all, so a wait that raises (cancel) loses nothing.
  local seen = 0
  while true do
    local buf, pos = self.buf, self.pos
    local from = seen >= #pat and pos + seen - #pat + 1 or pos
    local i, j = find(buf, pat, from, true)
    if i then
      self.pos = j + 1
      return sub(buf, pos, inclusive and j or i - 1)
    end
    seen = #buf - pos + 1
    local err = fill(self, task, deadline)
    if err then return nil, err, take_all(self) end
  end
end

-- sock:receiveuntil(pattern [, options]): OpenResty's cosocket call. An iterator; each
-- call returns the bytes before the next `pattern` (a plain string, not a Lua pattern)
-- and consumes the pattern, or nil, err, partial. options.inclusive: keep the pattern
-- at the end of what is returned. Reading the head of an HTTP request is then one call:
-- sock:receiveuntil("\r\n\r\n").
function Socket:receiveuntil(pattern, options)
  if type(pattern) ~= "string" then
    error("bad argument #1 to 'receiveuntil' (string expected, got " .. type(pattern) .. ")", 2)
  end
  if pattern == "" then error("bad argument #1 to 'receiveuntil' (empty pattern)", 2) end
  if options ~= nil and type(options) ~= "table" then
    error("bad argument #2 to 'receiveuntil' (table expected, got " .. type(options) .. ")", 2)
  end
  local inclusive = options ~= nil and options.inclusive and true or false
  return function(size)
    if size ~= nil then
      error("bad argument #1 to receiveuntil's iterator (no size: it returns whole parts)", 2)
    end
    return receive_until(self, pattern, inclusive)
  end
end

-- sock:settimeout(seconds [, mode]): nil or negative blocks. Both LuaSocket modes ("b",
-- "t") give a deadline for the whole call: it is not reset by each chunk.
function Socket:settimeout(t, mode)
  if mode ~= nil and mode ~= "b" and mode ~= "t" and mode ~= "block" and mode ~= "total" then
    error("bad argument #2 to 'settimeout' (invalid timeout mode)", 2)
  end
  if t ~= nil and type(t) ~= "number" then
    error("bad argument #1 to 'settimeout' (number expected, got " .. type(t) .. ")", 2)
  end
  if t ~= nil and t < 0 then t = nil end
  self.timeout = t
  return 1
end

-- Starts connect or bind (`op`) to host, port. A host that looked like an address but
-- is none ("999.1.1.1", "::zz") is LuaSocket's "host not found", not an argument error.
local function start_addr(op, fd, host, port, cb)
  local ok, h = pcall(start, op, fd, host, port, cb)
  if ok then return h end
  if type(h) == "string" and (find(h, "not an IPv4 address", 1, true) or
                              find(h, "not an IPv6 address", 1, true)) then
    return nil, "host not found"
  end
  error(h, 0)
end

local function connect_fd(self, task, family, host, port, deadline)
  local ok, err = ensure_fd(self, task, family)
  if not ok then return nil, err end
  local h, herr = start_addr(luring.connect, self.fd, host, port, task.cb)
  if not h then return nil, herr end
  local res = wait_on(self, task, h, deadline)
  if res == nil then return nil, "timeout" end
  if self.closed then return nil, "closed" end
  if res < 0 then return nil, message(res) end
  self.kind = "client"
  return 1
end

-- sock:connect(host, port): 1 or nil, err. TCP_NODELAY is set once connected.
function Socket:connect(host, port)
  local task = need_task("connect")
  if self.kind ~= "master" then return nil, "already connected" end
  if self.family == "unix" then
    return connect_fd(self, task, "unix", host, nil, self:deadline())
  end
  local family, addr = resolve(host, self.want_family)
  if not family then return nil, addr end
  if self.want_family and family ~= self.want_family then return nil, "host not found" end
  local ok, err = connect_fd(self, task, family, addr, port, self:deadline())
  if ok then luring.setsockopt(self.fd, "tcp-nodelay", true) end
  return ok, err
end

-- sock:bind(host, port): 1 or nil, err. "*" means any address.
function Socket:bind(host, port)
  local task = need_task("bind")
  local family, addr
  if self.family == "unix" then
    family, addr, port = "unix", host, nil
  else
    family, addr = resolve(host, self.want_family)
    if not family then return nil, addr end
  end
  local ok, err = ensure_fd(self, task, family)
  if not ok then return nil, err end
  local h, herr = start_addr(luring.bind, self.fd, addr, port, task.cb)
  if not h then return nil, herr end
  local res = wait_on(self, task, h)
  if res < 0 then return nil, message(res) end
  return 1
end

-- sock:listen([backlog]): 1 or nil, err; the socket is then a server.
function Socket:listen(backlog)
  local task = need_task("listen")
  if not self.fd then return nil, "not bound" end
  local h = start(core.ring().listen, self.fd, backlog or 32, task.cb)
  local res = wait_on(self, task, h)
  if res < 0 then return nil, message(res) end
  self.kind = "server"
  return 1
end

-- sock:accept(): a connected socket (TCP_NODELAY on), or nil, err.
function Socket:accept()
  local task = need_task("accept")
  if self.closed or not self.fd then return nil, "closed" end
  local h = start_for(self, core.ring().accept, self.fd, 0, task.cb)
  if not h then return nil, "closed" end
  local res = wait_on(self, task, h, self:deadline(), true)
  if res == nil then return nil, "timeout" end
  if self.closed then
    if res >= 0 then luring.close_fd_now(res) end
    return nil, "closed"
  end
  if res < 0 then return nil, message(res) end
  local client = new(res, "client", self.family)
  if self.family ~= "unix" then luring.setsockopt(res, "tcp-nodelay", true) end
  return client
end

local shutdown_how = { both = "both", send = "send", receive = "receive" }

-- sock:shutdown([how]): "both" (default), "send" or "receive". 1 or nil, err.
function Socket:shutdown(how)
  local task = need_task("shutdown")
  how = how or "both"
  if not shutdown_how[how] then
    error("bad argument #1 to 'shutdown' (invalid shutdown method)", 2)
  end
  if self.closed or not self.fd then return nil, "closed" end
  local h = start_for(self, core.ring().shutdown, self.fd, how, task.cb)
  if not h then return nil, "closed" end
  local res = wait_writing(self, task, h)
  if res < 0 then return nil, message(res) end
  return 1
end

-- sock:close(): idempotent. A request pending on the socket in another task is
-- cancelled in the kernel; that task's call returns nil, "closed". Such a request may
-- still be only queued: it is submitted before the descriptor is closed, or its number,
-- reused at once by a socket made elsewhere, would be what the kernel reads it as (the
-- request would take that socket's data). Under SQPOLL the poller reads the SQ when it
-- likes, so the ring closes the descriptor itself, behind the request (IORING_OP_CLOSE).
function Socket:close()
  if self.closed then return 1 end
  self.closed = true
  local loop = core.loop()
  local fd = self.fd
  local waiter = self.waiter
  if waiter then
    self.waiter = false
    core.wake_blocked(waiter, self)
  end
  -- (A multishot recv of an earlier run is gone with its ring: its handle may name
  -- another request of this one.)
  local ms = self.ms
  if not (loop and math_type(ms) == "integer" and self.ms_ring == loop.ring) then ms = false end
  if loop and (self.p1 or self.p2 or self.pset or ms) then
    local cancel = core.cancel_request
    if ms then cancel(ms) end
    -- (true: a fast-path wait that ran out of memory before it was queued)
    if math_type(self.p1) == "integer" then cancel(self.p1) end
    if math_type(self.p2) == "integer" then cancel(self.p2) end
    if self.pset then
      for h in pairs(self.pset) do cancel(h) end
    end
    if fd then
      if loop.sqpoll then
        core.close_behind(fd)
      else
        loop.ring:submit()
        luring.close_fd_now(fd)
      end
      fd = nil
    end
  end
  self.p1, self.p2, self.pset, self.ms = false, false, nil, false
  if fd then luring.close_fd_now(fd) end
  core.untrack(self)
  return 1
end
Socket.__close = Socket.close

function Socket:__gc()
  if not self.closed and self.fd then luring.close_fd_now(self.fd) end
end

function Socket:__tostring()
  return ("tcp{%s}: %s"):format(self.kind, self.closed and "closed" or tostring(self.fd))
end

function Socket:getfd() return self.fd or -1 end
function Socket:setfd(fd) self.fd = fd end
function Socket:dirty() return self.pos <= #self.buf end

local function name_result(t, err)
  if not t then return nil, err end
  if t.family == "unix" then return t.path, nil, "unix" end
  if type(t.family) ~= "string" then return nil, "unknown address family" end
  return t.address, t.port, t.family
end

-- sock:getsockname() / sock:getpeername(): address, port, family ("inet", "inet6"),
-- as LuaSocket; the path for unix sockets.
function Socket:getsockname()
  if not self.fd then return nil, "closed" end
  return name_result(luring.getsockname(self.fd))
end
function Socket:getpeername()
  if not self.fd then return nil, "closed" end
  return name_result(luring.getpeername(self.fd))
end

-- sock:setoption(name, value): "tcp-nodelay", "keepalive", "reuseaddr", "reuseport",
-- "linger" ... 1 or nil, err. Before the descriptor exists (async.tcp()), remembered.
function Socket:setoption(name, value)
  if type(value) == "table" and name == "linger" then
    value = value.on and (value.timeout or 0) or false
  end
  if not self.fd then
    self.options = self.options or {}
    self.options[#self.options + 1] = { name, value }
    return 1
  end
  local ok, err = luring.setsockopt(self.fd, name, value)
  if not ok then return nil, err end
  return 1
end
function Socket:getoption(name)
  if not self.fd then return nil, "closed" end
  return luring.getsockopt(self.fd, name)
end

-- ---- Constructors (async.tcp, async.connect, ...) ----

function socket.tcp() return new(nil, "master", nil) end
function socket.tcp6()
  local s = new(nil, "master", nil)
  s.want_family = "inet6"
  return s
end

function socket.connect(host, port, timeout)
  local s = socket.tcp()
  s:settimeout(timeout)
  local ok, err = s:connect(host, port)
  s:settimeout(nil)
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

function socket.listen(host, port, backlog)
  local s = socket.tcp()
  s:setoption("reuseaddr", true)
  local ok, err = s:bind(host, port)
  if ok then ok, err = s:listen(backlog) end
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

function socket.connect_unix(path)
  local s = new(nil, "master", "unix")
  local ok, err = connect_fd(s, need_task("connect_unix"), "unix", path, nil, nil)
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

function socket.listen_unix(path, backlog)
  local s = new(nil, "master", "unix")
  local ok, err = s:bind(path)
  if ok then ok, err = s:listen(backlog) end
  if not ok then
    s:close()
    return nil, err
  end
  return s
end

-- async.wrap(fd): a socket object for a descriptor made elsewhere (LuaSocket's getfd(),
-- luaposix). The object owns it from then on: close() closes it.
function socket.wrap(fd)
  -- LuaSocket's getfd() gives a float (lua_pushnumber): any number with an integer value.
  fd = type(fd) == "number" and math.tointeger(fd) or nil
  if not fd or fd < 0 then
    error("bad argument #1 to 'wrap' (a file descriptor expected)", 2)
  end
  local t = luring.getsockname(fd)
  local family = t and t.family or nil
  return new(fd, "client", type(family) == "string" and family or nil)
end

return socket
