-- SPDX-License-Identifier: Apache-2.0
-- fuzz_api: seeded random sequences of calls on the luring callback API and on
-- luring.async, against the real kernel, with a model that checks what comes back
-- (issue 12, item 3).
--
--   lua5.4 fuzz_api.lua                the driver: runs episodes, each in a fresh
--                                      interpreter, for LURING_FUZZ_SECONDS (default 60)
--                                      from the seed LURING_FUZZ_SEED (default: the clock)
--   lua5.4 fuzz_api.lua episode SEED   one episode: what the driver runs, and the
--                                      reproducer it prints when an episode fails
--
-- An episode makes small rings (1-8 entries, so the SQ fills and the CQ overflows; some
-- SQPOLL, COOP_TASKRUN|TASKRUN_FLAG, SINGLE_ISSUER|DEFER_TASKRUN), pipes, socket pairs,
-- files with known content, a scratch directory and a loopback listener, then does a
-- few hundred random things: every op of the module with valid arguments, and with one
-- argument of a wrong type or value (which must raise an error naming the function);
-- chains; callbacks that raise, recurse into do_cqes, submit, wait, close the ring or
-- collect garbage; finalizers that queue requests or close the ring; closing and
-- collecting rings with requests in flight; registered files (their handles in place of
-- the descriptors of the stream and file requests) and registered buffers (read_fixed,
-- write_fixed), dropped at random moments; then luring.async tasks (spawns, cancels,
-- timeouts, sleeps, queues, loopback echo, files, sockets closed by other tasks).
-- Checked: no crash and no sanitizer report (the driver sees the child die); every
-- request that returned a handle gets its callback exactly once (multishot: until
-- more == false) unless its ring was closed first, and then never; each result is what
-- the kernel must give (data read equals data written, file contents, sizes, errors);
-- in_flight() is 0 after everything finished; no descriptor leaks (helper.fd_count);
-- unregister_files and unregister_buffers say -EBUSY exactly while a request that uses a
-- registered file or buffer is in flight (before IORING_FEAT_RSRC_TAGS: any request),
-- handles of a dropped registration or of another ring raise, and a registered buffer
-- the program dropped stays alive while the ring has it.
--
-- The model only does what has one right answer: at most one write and one read in
-- flight per byte stream, no read of a file region while it is being written, no two
-- requests on one scratch name, and descriptors are closed only when no request uses
-- them (closing a descriptor with a request still queued is a program's bug: under
-- SQPOLL the poller may read the SQE after the number was reused; see the README).
local luring = require "luring"
local helper = require "helper"
local testlib = require "testlib"

local unpack, pack = table.unpack, table.pack
local fmt = string.format
local now = luring.now
local E = luring.errno

-- ==== The driver ==========================================================================

local function driver()
  local seed = math.tointeger(tonumber(os.getenv("LURING_FUZZ_SEED") or ""))
  if not seed then seed = (math.floor(now() * 1000) * 7919 + helper.pid()) % 1000000007 end
  local seconds = tonumber(os.getenv("LURING_FUZZ_SECONDS") or "") or 60
  print(fmt("fuzz_api: seed %d, %g seconds (repeat: LURING_FUZZ_SEED=%d LURING_FUZZ_SECONDS=%g)",
            seed, seconds, seed, seconds))
  io.stdout:flush()
  local prefix = helper.lua_command(arg[0], "episode")
  local out = os.tmpname()
  local watch = os.tmpname()
  -- A watchdog: an episode still running after `hang` seconds is stuck in the kernel
  -- (or in an endless loop); the ring's fdinfo (SQ/CQ heads and tails, armed polls, the
  -- overflow list) and the threads' kernel stacks are saved before it is killed.
  local hang = tonumber(os.getenv("LURING_FUZZ_HANG") or "") or 60
  local function run_episode(eseed)
    local cmd = table.concat({
      fmt("%s %d >%s 2>&1 & p=$!", prefix, eseed, out),
      fmt("(sleep %d; if kill -0 $p 2>/dev/null; then", hang),
      "  for f in /proc/$p/fd/*; do",
      "    if [ \"$(readlink $f)\" = 'anon_inode:[io_uring]' ]; then",
      "      echo \"== io_uring $f\"; cat /proc/$p/fdinfo/${f##*/}; fi; done;",
      "  for t in /proc/$p/task/*; do echo \"== $(cat $t/comm) $(cat $t/wchan)\";",
      "    cat $t/stack 2>/dev/null; done;",
      fmt("  kill -9 $p; fi) >%s 2>&1 & w=$!", watch),
      "wait $p; rc=$?; kill $w 2>/dev/null; wait $w 2>/dev/null; exit $rc",
    }, "\n")
    local f = assert(io.open(watch, "w"))
    f:close()
    return os.execute(cmd)
  end
  local start = now()
  local episodes = 0
  local totals = {}
  local order = {}
  while now() - start < seconds do
    local eseed = seed * 1000 + episodes
    episodes = episodes + 1
    local _, how, code = run_episode(eseed)
    local f = assert(io.open(out))
    local output = f:read("a")
    f:close()
    local stats = output:match("\nFUZZ_STATS ([^\n]*)\n") or output:match("^FUZZ_STATS ([^\n]*)\n")
    if how ~= "exit" or code ~= 0 or not stats then
      local lines = {}
      for line in output:gmatch("[^\n]*") do lines[#lines + 1] = line end
      local first = math.max(1, #lines - 120)
      print(fmt("FAIL: episode %d (seed %d) ended with %s %s after %.1f s; its last lines:",
                episodes, eseed, how, tostring(code), now() - start))
      print(table.concat(lines, "\n", first))
      local w = io.open(watch)
      local wtext = w and w:read("a") or ""
      if w then w:close() end
      if wtext ~= "" then
        print(fmt("(the episode ran longer than %d s: killed; the last line is where it hung)",
                  hang))
        print(wtext)
      end
      -- The sanitizer runtimes the ASan suite preloads go into the command too.
      local env = {}
      for _, name in ipairs({ "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS" }) do
        local v = os.getenv(name)
        if v then env[#env + 1] = name .. "=" .. helper.shell_quote(v) end
      end
      env[#env + 1] = prefix
      print(fmt("reproduce (one episode; timing can make a rerun differ): %s %d",
                table.concat(env, " "), eseed))
      print(fmt("the whole trace of the episode: %s", out))
      os.remove(watch)
      os.exit(1)
    end
    for k, v in stats:gmatch("(%w+)=(%d+)") do
      if not totals[k] then order[#order + 1] = k end
      totals[k] = (totals[k] or 0) + tonumber(v)
    end
  end
  os.remove(out)
  os.remove(watch)
  local parts = {}
  for _, k in ipairs(order) do parts[#parts + 1] = k .. "=" .. totals[k] end
  print(fmt("fuzz_api: seed %d: %d episodes in %.0f s, no finding; %s", seed, episodes,
            now() - start, table.concat(parts, " ")))
end

if arg[1] ~= "episode" then
  driver()
  return
end

-- ==== One episode =========================================================================

local SEED = math.tointeger(tonumber(arg[2])) or error("episode needs a seed")
math.randomseed(SEED)
local rnd = math.random
local function chance(p) return rnd() < p end
local function pick(t) return t[rnd(#t)] end

-- The trace: one line per call, flushed before every call that may block, so the last
-- line of a hung or crashed episode says where it was.
local out = io.stdout
out:setvbuf("full")
local nline = 0
local function log(...)
  nline = nline + 1
  out:write(nline, " ", fmt(...), "\n")
end
local function flush() out:flush() end

local function fail(...)
  local msg = fmt(...)
  out:write("FUZZ FAILURE (seed ", SEED, "): ", msg, "\n", debug.traceback(), "\n")
  out:flush()
  os.exit(3, false)
end
local function check(cond, ...)
  if not cond then fail(...) end
end

local stats = { ops = 0, cbs = 0, bad = 0, chains = 0, raised = 0, rings = 0, closes = 0,
                waits = 0, tasks = 0, slowcloses = 0, fixed = 0 }

-- Which ops the kernel has (luring.probe), by the Lua name.
local kernel_has = {}
do
  local names = {}
  for _, o in ipairs(luring.probe().ops or {}) do names[o.name] = o.supported end
  local map = { close_fd = "close", multishot_accept = "accept", poll_multishot = "poll_add",
                recv_multishot = "recv", read_into = "read", recv_into = "recv",
                cancel = "async_cancel", cancel_fd = "async_cancel", cancel_all = "async_cancel" }
  setmetatable(kernel_has, { __index = function(_, k) return names[map[k] or k] == true end })
end

-- The kernel's IORING_FEAT_* by name (cqe_skip: 5.17).
local has_feature = {}
for _, name in ipairs(luring.probe().features.names or {}) do has_feature[name] = true end

local fd_start = helper.fd_count()
testlib.alarm(150)  -- a backstop: the driver's watchdog kills a hung episode first

local seq = 0
-- Bytes no other write has: a tag and a counter, repeated.
local function payload(n)
  seq = seq + 1
  local unit = fmt("<%x.%x>", SEED % 4096, seq) .. "0123456789abcdefghijklmnopqrstuvwxyz"
  return string.rep(unit, n // #unit + 1):sub(1, n)
end
local function some_size()
  local r = rnd()
  if r < 0.05 then return 0 end
  if r < 0.6 then return rnd(1, 200) end
  if r < 0.9 then return rnd(200, 3000) end
  return rnd(3000, 20000)
end

-- ---- The rings ----------------------------------------------------------------------------

local S = luring.setup
local flag_sets = {
  { 0, "0" },
  { S.SQPOLL, "SQPOLL" },
  { S.COOP_TASKRUN | S.TASKRUN_FLAG, "COOP_TASKRUN|TASKRUN_FLAG" },
  { S.SINGLE_ISSUER | S.DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN" },
  { S.SINGLE_ISSUER | S.DEFER_TASKRUN | S.TASKRUN_FLAG,
    "SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG" },
  { S.COOP_TASKRUN, "COOP_TASKRUN" },
  { S.SUBMIT_ALL, "SUBMIT_ALL" },
  { S.SQPOLL | S.SINGLE_ISSUER, "SQPOLL|SINGLE_ISSUER" },
}

local R = nil       -- the model of the current ring: { ring, id, closed, entries, flags, name }
local ring = nil    -- R.ring
local ring_serial = 0
local all_reqs = {} -- every request with a callback that has not ended, by record
local frames = {}   -- one per dispatching call (do_cqes, run, run_once) being made
local depth = 0     -- callbacks running (nested)

local function open_ring()
  local entries = rnd(1, 8)
  local fs = flag_sets[rnd(#flag_sets)]
  if chance(0.3) then fs = flag_sets[1] end
  local opts = fs[1]
  local cq
  if chance(0.3) then
    -- The smallest CQ the kernel takes (as many entries as the SQ): overflows sooner.
    local sq = 1
    while sq < entries do sq = sq * 2 end
    cq = sq * (chance(0.5) and 1 or 2)
    opts = { flags = fs[1], cq_entries = cq, sq_thread_idle = chance(0.5) and 1 or nil }
  end
  local ok, r = pcall(luring.queue_init, entries, opts)
  if not ok then
    log("queue_init(%d, %s) refused: %s; plain ring", entries, fs[2], tostring(r))
    r = luring.queue_init(entries)
    fs = flag_sets[1]
  end
  ring_serial = ring_serial + 1
  stats.rings = stats.rings + 1
  R = { ring = r, id = ring_serial, closed = false, entries = entries, flags = fs[1],
        name = fs[2], sqpoll = (fs[1] & S.SQPOLL) ~= 0, out = 0, sure = 0, blockers = 0, cbless = 0,
        sq = math.tointeger(tonumber(tostring(r):match("sq (%d+)"))), finished = {},
        may_drain = chance(0.2), reg = nil, stale = {}, bufs = nil, old_bufs = nil }
  ring = r
  log("ring %d: queue_init(%d, %s%s) -> %s", R.id, entries, fs[2], cq and (" cq " .. cq) or "",
      tostring(r))
  if chance(0.15) then
    luring._test_gc_on_push(r, true)
    log("ring %d: _test_gc_on_push", R.id)
  end
end

-- ---- Resources and their models -----------------------------------------------------------

local fdbusy = {}   -- fd -> requests in flight that name it
local function busy(fds, d)
  for _, fd in ipairs(fds) do
    fdbusy[fd] = (fdbusy[fd] or 0) + d
    if fdbusy[fd] == 0 then fdbusy[fd] = nil end
  end
end

-- A byte stream (a pipe, one direction of a socket pair or TCP connection): `buf` is
-- what was written and not read yet; its last `pend_left` bytes belong to the write in
-- flight (`pend_total` bytes long, `pcons` of them read already).
local streams = {}
local stream_id = 0
local function new_stream(kind, rfd, wfd, pair)
  stream_id = stream_id + 1
  local s = { id = stream_id, kind = kind, rfd = rfd, wfd = wfd, buf = "", pend_total = 0,
              pend_left = 0, pcons = 0, wbusy = false, rbusy = false, shut = false,
              pair = pair, retired = false, taken = 0, pins = {} }
  streams[#streams + 1] = s
  log("stream %d: %s, %d -> %d", s.id, kind, wfd, rfd)
  return s
end
local function confirmed(s) return #s.buf - s.pend_left end

local function stream_write_begin(s, data)
  check(not s.wbusy, "stream %d: two writes", s.id)
  s.wbusy = true
  s.buf = s.buf .. data
  s.pend_total, s.pend_left, s.pcons = #data, #data, 0
  log("  stream %d: write of %d begins (%d buffered)", s.id, #data, #s.buf)
end
-- A write whose bytes are known only when it ends (splice, tee into the stream).
local function stream_write_end(s, res, what)
  if res < 0 then res = 0 end
  check(res <= s.pend_total, "stream %d: %s wrote %d of %d bytes", s.id, what, res, s.pend_total)
  check(res >= s.pcons, "stream %d: %d bytes of a %s were read but only %d were written",
        s.id, s.pcons, what, res)
  local unwritten = s.pend_total - res
  check(s.pend_left >= unwritten, "stream %d: model", s.id)
  s.buf = s.buf:sub(1, #s.buf - unwritten)
  s.pend_total, s.pend_left, s.pcons = 0, 0, 0
  s.wbusy = false
  log("  stream %d: %s wrote %d (%d buffered)", s.id, what, res, #s.buf)
end
-- `data` came out of the stream.
local function stream_consume(s, data, what)
  local n = #data
  if n == 0 then return end
  local want = s.buf:sub(1, n)
  if want ~= data then
    local i = 1
    while i <= n and want:byte(i) == data:byte(i) do i = i + 1 end
    fail("stream %d (%s): %s got other bytes than were written: %d bytes, first difference " ..
         "at %d: got %q, expected %q (model had %d bytes)", s.id, s.kind, what, n, i,
         data:sub(i, i + 40), want:sub(i, i + 40), #s.buf)
  end
  local conf = confirmed(s)
  if n > conf then
    local from_pending = n - conf
    s.pend_left = s.pend_left - from_pending
    s.pcons = s.pcons + from_pending
  end
  s.buf = s.buf:sub(n + 1)
  s.taken = s.taken + n
  log("  stream %d: %s took %d (%d buffered)", s.id, what, n, #s.buf)
  -- Bytes spliced in from a file are references to its pages until they are read.
  for i = #s.pins, 1, -1 do
    local pin = s.pins[i]
    if s.taken >= pin.until_ then
      pin.file.pins = pin.file.pins - 1
      table.remove(s.pins, i)
    end
  end
end
local function unpin_all(s)
  for _, pin in ipairs(s.pins) do pin.file.pins = pin.file.pins - 1 end
  s.pins = {}
end
-- The files whose pages a pipe may hold (see stream_append).
local function pinned_files(s)
  local list = {}
  for _, pin in ipairs(s.pins) do list[#list + 1] = pin.file end
  return list
end
local function stream_append(s, data, from_files)
  -- Bytes a splice or tee put in (the stream's reader was held meanwhile).
  s.buf = s.buf .. data
  if from_files and #data > 0 then
    -- splice(2) from a file puts references to its page cache pages in the pipe, and a
    -- splice or tee from that pipe to another moves or copies the references: a write to
    -- the file before they are read shows through. No writes to it until then.
    for _, f in ipairs(from_files) do
      f.pins = f.pins + 1
      s.pins[#s.pins + 1] = { file = f, until_ = s.taken + #s.buf }
    end
  end
  log("  stream %d: %d spliced in (%d buffered)", s.id, #data, #s.buf)
end

-- Files with known content. `readers` reads in flight; `writer` a write in flight.
local files = {}
local function new_file(content)
  local path = helper.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(content)
  f:close()
  local fd = luring.open_file(path, "w")
  check(fd >= 0, "open_file %s: %d", path, fd)
  local file = { path = path, fd = fd, content = content, readers = 0, writer = false, pins = 0 }
  files[#files + 1] = file
  return file
end
local function file_resync(file)
  local f = assert(io.open(file.path, "rb"))
  file.content = f:read("a")
  f:close()
  log("  file %d: read back, %d bytes", file.fd, #file.content)
end
local function file_write_model(file, off, data)
  if #data == 0 then return end  -- writing nothing past the end does not extend the file
  local c = file.content
  if off > #c then c = c .. string.rep("\0", off - #c) end
  file.content = c:sub(1, off) .. data .. c:sub(off + #data + 1)
  log("  file %d: %d bytes at %d (%d bytes)", file.fd, #data, off, #file.content)
end

-- The scratch directory: a few names, each absent, a file, a directory or a dangling
-- symbolic link; one request at a time per name.
local scratch = helper.tmpname()
os.remove(scratch)
assert(os.execute("mkdir " .. scratch))
local names = { "a", "b", "c", "d" }
local ns = {}        -- name -> nil | "file" | "directory" | "link"
local nsid = {}      -- name -> which inode (hard links share one)
local nsid_next = 0
local function new_id()
  nsid_next = nsid_next + 1
  return "m" .. nsid_next
end
local nsbusy = {}    -- name -> true while a request uses it
local DANGLING = "/nonexistent-luring-fuzz-dir/target"
local function spath(n) return scratch .. "/" .. n end

-- Descriptors the fuzzer received (openat, accept, socket) and must close.
local owned = {}     -- fd -> { kind = ..., id = "dev:ino" }
local closing = {}   -- fd -> the "dev:ino" of a descriptor a close_fd request is closing
-- Which file a descriptor is (a ring of its own, synchronously): to tell, after a ring
-- closed with a close_fd in flight, whether the number is still ours.
local function fd_identity(fd)
  local r = luring.queue_init(2)
  local id
  r:statx(fd, nil, function(_, res, st) id = res == 0 and (st.dev .. ":" .. st.ino) or nil end)
  r:run(5)
  r:close()
  return id
end
local function own(fd, kind)
  check(owned[fd] == nil, "descriptor %d received twice (%s)", fd, kind)
  owned[fd] = { kind = kind, id = fd_identity(fd) }
end
local function disown_close(fd)
  log("  close %d (%s)", fd, owned[fd] and owned[fd].kind or "?")
  owned[fd] = nil
  local ok, err = luring.close_fd_now(fd)
  check(ok, "close_fd_now(%d): %s", fd, tostring(err))
end

-- Requests that are only handles (targets for cancel, timeout_remove, poll_remove).
local targets = {}   -- list of request records

-- Fixed resources: two pipes, two socket pairs, /dev/null, two files, a listener.
local devnull = luring.open_file("/dev/null", "w")
check(devnull >= 0, "open /dev/null")

local function new_pipe()
  local r, w = testlib.pipe()
  return new_stream("pipe", r, w)
end
local function new_socketpair()
  local a, b = testlib.socketpair()
  local ab = new_stream("unix", b, a)
  local ba = new_stream("unix", a, b)
  ab.pair, ba.pair = ba, ab
  return ab, ba
end
for _ = 1, 2 do new_pipe() end
for _ = 1, 2 do new_socketpair() end
for _ = 1, 2 do new_file(payload(rnd(0, 20000))) end

-- The loopback listener (made with a ring of its own, synchronously).
local function sync_op(fn)
  local r = luring.queue_init(4)
  local got
  check(fn(r, function(_, ...) got = pack(...) end), "sync op: SQ full")
  r:run(5)
  r:close()
  check(got, "sync op did not complete")
  return unpack(got, 1, got.n)
end
local listen_fd = sync_op(function(r, cb) return r:socket("inet", "stream", 0, cb) end)
check(listen_fd >= 0, "socket: %d", listen_fd)
luring.setsockopt(listen_fd, "reuseaddr", true)
check(sync_op(function(r, cb) return r:bind(listen_fd, "127.0.0.1", 0, cb) end) == 0, "bind")
check(sync_op(function(r, cb) return r:listen(listen_fd, 64, cb) end) == 0, "listen")
local listen_port = luring.getsockname(listen_fd).port
-- An unbound TCP socket: the descriptor of the bad-argument calls of connect and bind.
local spare_sock = sync_op(function(r, cb) return r:socket("inet", "stream", 0, cb) end)
check(spare_sock >= 0, "socket")
-- A port nothing listens on (bound, then closed): connect gets ECONNREFUSED.
local spare_port
do
  local fd = sync_op(function(r, cb) return r:socket("inet", "stream", 0, cb) end)
  check(sync_op(function(r, cb) return r:bind(fd, "127.0.0.1", 0, cb) end) == 0, "bind")
  spare_port = luring.getsockname(fd).port
  luring.close_fd_now(fd)
end
local accepted_by_port = {}  -- peer port -> accepted fd, waiting for its connect to end
local connected_by_port = {} -- local port -> client fd whose connect ended first
-- Ports of clients closed before they were paired: the server side may still be in the
-- listen backlog, and loopback reuses ports at once (tcp_tw_reuse), so a later client
-- with the same port must not be paired with it. Sides from these ports are closed.
local stale_ports = {}
local tcp_conns = 0

local function tcp_pair(client, server)
  tcp_conns = tcp_conns + 1
  local cs = new_stream("tcp", server, client)
  local sc = new_stream("tcp", client, server)
  cs.pair, sc.pair = sc, cs
  -- accept(SOCK_NONBLOCK): a read or write on the server side that the kernel does not
  -- poll for (one linked behind another, in a worker) ends with -EAGAIN instead of
  -- waiting; most do wait (io_uring polls for them), so they are not sure either way.
  if owned[server].nonblock then cs.nb_r, sc.nb_w = true, true end
  owned[client].stream, owned[server].stream = cs, sc
  log("tcp pair %d: client %d, server %d", tcp_conns, client, server)
end

-- ---- Requests -------------------------------------------------------------------------------

-- A request record: { h, op, R, sure, multishot, check = fn(req, res, final, ...),
-- release = fn(req), done, calls, target_kind, removed }.
local function finish(req)
  req.done = true
  local chain = req.chain
  if chain then
    chain.ended = chain.ended + 1
    if chain.ended == #chain.reqs and chain.check_end then chain.check_end() end
  end
  all_reqs[req] = nil
  req.R.out = req.R.out - 1
  if req.sure then req.R.sure = req.R.sure - 1 end
  if req.blocker then req.R.blockers = req.R.blockers - 1 end
  if req.release then req.release(req) end
  local fh = req.R.finished
  fh[#fh + 1] = req.h
  if #fh > 64 then table.remove(fh, 1) end
end

-- The cqe token of the running callback, kept to check that it goes stale.
local stale_cqe = nil

local behave  -- forward: what a callback does besides checking (below)

local function make_callback(req)
  local function cb(cqe, res, ...)
    stats.cbs = stats.cbs + 1
    if req.R.closed then
      fail("callback of %s (handle %s) ran after its ring %d was closed", req.op,
           tostring(req.h), req.R.id)
    end
    if req.done then
      fail("callback of %s (handle %s) ran after its last one", req.op, tostring(req.h))
    end
    check(type(cqe) == "userdata", "%s: cqe is a %s", req.op, type(cqe))
    check(math.type(res) == "integer", "%s: res is %s", req.op, tostring(res))
    req.calls = req.calls + 1
    local final = true
    if req.multishot then
      local n = select("#", ...)
      local more = select(n, ...)
      check(type(more) == "boolean", "%s: more is %s", req.op, tostring(more))
      final = not more
    elseif req.h == nil then
      -- Not yet returned by the call that queued it: impossible (callbacks run from
      -- dispatch only), unless dispatch ran inside the op call.
      fail("callback of %s ran before its op returned", req.op)
    end
    local ok, err = pcall(req.check, req, res, final, ...)
    if not ok then
      fail("%s (handle %s): check raised: %s", req.op, tostring(req.h), tostring(err))
    end
    if final then finish(req) end
    depth = depth + 1
    local ok2, e2 = pcall(behave, req, cqe, final)
    depth = depth - 1
    if not ok2 then error(e2, 0) end  -- a deliberate raise (behave records it)
  end
  local form = rnd()
  if form < 0.75 then return cb end
  if form < 0.85 then
    return setmetatable({}, { __call = function(_, ...) return cb(...) end })
  end
  -- A coroutine: resumed with the callback's arguments; waits for the next ones.
  req.coroutine = true
  return coroutine.create(function(...)
    local args = pack(...)
    while true do
      cb(unpack(args, 1, args.n))
      if req.done then return end
      args = pack(coroutine.yield())
    end
  end)
end

-- Callbacks raise only where the fuzzer made the call that dispatches (a frame), so it
-- can check that the first error comes out of it.
local function raise_from_callback(req)
  local frame = frames[#frames]
  if not frame then return end
  local e
  if chance(0.5) then
    e = fmt("fuzz-cb-error %d", rnd(1, 1e9))
  else
    e = { fuzz_error = rnd(1, 1e9) }
  end
  if frame.first == nil then frame.first = e end
  stats.raised = stats.raised + 1
  log("  callback of %s raises %s", req.op, type(e) == "table" and "a table" or e)
  error(e, 0)
end

local function same_error(expected, got)
  if type(expected) == "table" then return got == expected end
  return type(got) == "string" and got:find(expected, 1, true) ~= nil
end

-- Calls one of do_cqes, run, run_once (`fn`) and checks what the callbacks raised: the
-- first error comes out, or nothing if none raised.
local function dispatching(what, fn, ...)
  local frame = { first = nil }
  frames[#frames + 1] = frame
  flush()
  local res = pack(pcall(fn, ...))
  check(frames[#frames] == frame, "frames")
  frames[#frames] = nil
  if frame.first ~= nil then
    check(not res[1], "%s returned normally though a callback raised %s", what,
          tostring(frame.first))
    check(same_error(frame.first, res[2]), "%s raised %s, not the first callback error %s",
          what, tostring(res[2]), tostring(frame.first))
    return nil
  end
  if not res[1] and R.closed and tostring(res[2]):find("closed ring", 1, true) then
    -- A finalizer closed the ring (a GC step can run one anywhere).
    log("  %s: the ring was closed by a finalizer", what)
    return nil
  end
  if not res[1] then fail("%s raised %s (no callback raised)", what, tostring(res[2])) end
  return unpack(res, 2, res.n)
end

-- ---- Making calls -----------------------------------------------------------------------------

-- Direct call sites, so an error names the function (pcall(ring.read, ...) says '?').
local callers = {}
local function caller(name, form)
  local key = name .. form
  local c = callers[key]
  if not c then
    local src = form == "method" and
        fmt("return function(r, ...) return r:%s(...) end", name) or
        fmt("local luring = ...; return function(r, ...) return luring.%s(r, ...) end", name)
    c = assert(load(src, "=" .. name))(luring)
    callers[key] = c
  end
  return c
end

local describe  -- forward

-- How many arguments each op takes before its callback (optional ones may be nil).
local NARGS = { write = 3, read = 3, recv = 3, send = 3, readv = 3, writev = 3, openat = 3,
                close_fd = 1, statx = 2, fsync = 2, fallocate = 4, ftruncate = 2, unlinkat = 2,
                renameat = 3, mkdirat = 2, symlinkat = 2, linkat = 3, splice = 6, tee = 4,
                accept = 2, multishot_accept = 2, socket = 3, connect = 3, bind = 3, listen = 2,
                shutdown = 2, sendmsg = 4, recvmsg = 3, send_zc = 3, timeout = 3,
                timeout_remove = 1, link_timeout = 1, poll_add = 2, poll_multishot = 2,
                poll_remove = 1, cancel = 1, cancel_fd = 1, cancel_all = 0, nop = 0,
                recv_multishot = 2, read_into = 5, recv_into = 5, read_fixed = 5,
                write_fixed = 5 }

-- A splice or tee that may wait for its pipe does so in a kernel worker, and a ring has
-- only min(entries, 4 x CPUs) workers for such work (io-wq's bounded ones): with one
-- blocked there, the ring's other worker-run requests (openat, statx, fsync...) wait
-- behind it. Seen on 6.1 in its QEMU guest: a 1-entry SQPOLL ring, a pipe->file splice
-- of an empty pipe in the one worker (pipe_wait_readable), an openat never completing.
-- So while one is out, nothing on the ring is sure (see sure_count).
local function note_blocker(req)
  if not req.sure and (req.op == "splice" or req.op == "tee") then
    req.blocker = true
    req.R.blockers = req.R.blockers + 1
  end
end
local function sure_count(Rr) return Rr.blockers > 0 and 0 or Rr.sure end

-- Queues `plan` (from a generator) on the current ring with a checking callback.
-- Returns the record, or nil when the SQ was full (the plan's reservations released).
local function queue(plan, opts)
  opts = opts or {}
  local req = { op = plan.op, R = R, sure = plan.sure, multishot = plan.multishot,
                check = plan.check, release = plan.release, calls = 0, done = false,
                target_kind = plan.target_kind, plan = plan }
  local cb = nil
  local cbless = opts.cbless
  if not cbless then cb = make_callback(req) end
  local flags = opts.sqe_flags
  if flags == nil and chance(0.1) then
    flags = pick({ luring.sqe.ASYNC, luring.sqe.IO_DRAIN, 0 })
  end
  -- IO_DRAIN: it starts after everything before it ended, and requests after it wait in
  -- the kernel's defer list. On 6.18 each request taken from that list waits for every
  -- request in flight, cancels included, and when the list is empty again cannot be
  -- told from here (finding F3), so one request that never ends can wedge the ring.
  -- Only some rings drain: an idle one, and then they queue only requests that surely
  -- end, for good.
  -- (After a CQE_SKIP_SUCCESS request, the kernel fails IO_DRAIN ones with -EOPNOTSUPP:
  -- io_init_req's drain_disabled, since 5.17.)
  if flags == luring.sqe.IO_DRAIN and (not R.may_drain or R.skip_used) then flags = 0 end
  if flags == luring.sqe.IO_DRAIN then
    -- (Never a send_zc: on 6.18 a drained one never starts, finding F5.)
    if R.out == 0 and ring:in_flight() == 0 and plan.sure and plan.op ~= "send_zc" then
      R.drain_mode = true
      R.drained_ever = true
    else
      flags = 0
    end
  end
  if R.drain_mode and not plan.sure then
    log("%s: not queued (a drain is pending and it might never end)", plan.op)
    -- (Not started yet: queue() starts a plan only once the op returned its handle.)
    if plan.release then plan.release(req) end
    return nil
  end
  local args = plan.args
  local n = NARGS[plan.op]
  local call = caller(plan.op, chance(0.5) and "method" or "module")
  stats.ops = stats.ops + 1
  log("%s(%s)%s%s%s", plan.op, describe(args, n), cbless and " no cb" or "",
      flags and flags ~= 0 and (" sqe " .. flags) or "", plan.note and (" " .. plan.note) or "")
  local ok, h
  if flags then
    local a = { unpack(args, 1, n) }
    a[n + 1] = cb
    a[n + 2] = flags
    ok, h = pcall(call, ring, unpack(a, 1, n + 2))
  else
    local a = { unpack(args, 1, n) }
    a[n + 1] = cb
    ok, h = pcall(call, ring, unpack(a, 1, n + 1))
  end
  -- Until the request is in the model, no GC step may run a finalizer that closes the
  -- ring: its reaping would go unseen (the op's own checks are where finalizers run).
  collectgarbage("stop")
  if not ok and R.closed and tostring(h):find("closed ring", 1, true) then
    -- A finalizer that ran during the checks closed the ring.
    log("  -> raised: the ring was closed during the checks")
    if plan.release then plan.release(req) end
    collectgarbage("restart")
    return nil
  end
  if not ok then
    fail("%s with valid arguments raised: %s", plan.op, tostring(h))
  end
  if h == nil then
    log("  -> nil (SQ full)")
    if plan.release then plan.release(req) end
    collectgarbage("restart")
    return nil
  end
  check(math.type(h) == "integer" and h > 0, "%s returned %s", plan.op, tostring(h))
  for r in pairs(all_reqs) do
    if r.h == h and r.R == R then
      fail("%s returned handle %d of a request in flight", plan.op, h)
    end
  end
  req.h = h
  log("  -> %d", h)
  if cbless then
    R.cbless = R.cbless + 1
    -- Nothing will say when it ends: its reservations stay until the ring is drained.
    req.cbless = true
    R.cbless_list = R.cbless_list or {}
    R.cbless_list[#R.cbless_list + 1] = req
  else
    all_reqs[req] = true
    R.out = R.out + 1
    if req.sure then R.sure = R.sure + 1 end
    note_blocker(req)
  end
  if plan.target_kind then targets[#targets + 1] = req end
  if plan.started then plan.started(req) end
  if plan.op == "send_zc" then R.zc_ever = true end
  collectgarbage("restart")
  return req
end

function describe(args, n)
  local parts = {}
  for i = 1, n do
    local v = args[i]
    if type(v) == "string" then
      parts[i] = #v > 24 and fmt("<%d bytes %s>", #v, v:match("^<[%x.]+>") or "") or fmt("%q", v)
    elseif type(v) == "table" then
      local first = rawget(v, 1)
      local tag = type(first) == "string" and (" " .. (first:match("^<[%x.]+>") or "")) or ""
      parts[i] = "{" .. #v .. tag .. "}"
    else
      parts[i] = tostring(v)
    end
  end
  return table.concat(parts, ", ")
end

-- Results every request may get instead of its own: cancelled (cancel, cancel_fd,
-- cancel_all, a soft chain's failure, a drain), or interrupted in a kernel worker.
local function cancelled(res) return res == -E.ECANCELED or res == -E.EINTR end
-- splice and tee cancelled in a kernel worker end with -ERESTARTSYS (-512), which the
-- kernel should have turned into -EINTR (it does for read and write): finding F4.
local ERESTARTSYS = -512
local function splice_cancelled(res) return cancelled(res) or res == ERESTARTSYS end

-- ---- Registered files and buffers ----------------------------------------------------------
-- R.reg: the ring's registered files, nil when none: { handles, sr = stream -> handle of
-- its read end, sw = ... of its write end, f = file -> handle, null = /dev/null's, empty =
-- a -1 slot's }, by stream and file record, not by number (a retired stream's number
-- comes back for the next one, while the slot still holds the old file). R.stale: handles
-- of its dropped registrations. R.bufs: its registered buffers, { list = { entry } },
-- entry { ref (a weak table: the ring alone may hold the buffer), strong, size, index,
-- busy (a request uses it: one at a time, as for a stream) }. A request on a handle or a
-- registered buffer has plan.fixed.
local handle_fd = setmetatable({}, { __mode = "k" })  -- handle -> the descriptor it names
local foreign_handles = {}  -- handles of closed rings and of other rings
local fixed_bufs_refused = false  -- -ENOMEM (RLIMIT_MEMLOCK): no registered buffers
local function add_foreign(h)
  foreign_handles[#foreign_handles + 1] = h
  if #foreign_handles > 16 then table.remove(foreign_handles, 1) end
end

-- A handle of the current registration for a stream's read end ("r"), write end ("w"),
-- a file ("f") or /dev/null ("n"), half the time when there is one; else `fd`.
local function fd_or_handle(kind, obj, fd)
  local reg = R.reg
  if not reg or R.closed or not chance(0.5) then return fd, false end
  local h
  if kind == "r" then h = reg.sr[obj] elseif kind == "w" then h = reg.sw[obj]
  elseif kind == "f" then h = reg.f[obj] else h = reg.null end
  if h then return h, true end
  return fd, false
end

-- A registered buffer no request uses, or nil.
local function fixed_buffer()
  local bufs = R.bufs
  if not bufs or R.closed then return nil end
  local c = {}
  for _, e in ipairs(bufs.list) do
    check(e.ref[1] ~= nil, "ring %d: registered buffer %d (%d bytes) was collected", R.id,
          e.index, e.size)
    if not e.busy then c[#c + 1] = e end
  end
  return c[1] and pick(c) or nil
end

-- The plan holds registered buffer `e` from its start to its end.
local function holding_buffer(plan, e)
  plan.fixed = true
  local st, un, rel = plan.started, plan.unstart, plan.release
  plan.started = function(req) e.busy = true; if st then st(req) end end
  plan.unstart = function() e.busy = false; if un then un() end end
  plan.release = function(req)
    if req.h and req.done then e.busy = false end
    if rel then rel(req) end
  end
  return plan
end

-- Requests in flight on the current ring that use a registered file or buffer.
local function fixed_users()
  local n = 0
  for req in pairs(all_reqs) do
    if req.R == R and not req.done and req.plan and req.plan.fixed then n = n + 1 end
  end
  return n
end

-- ---- Generators: one valid request each, with what its callback must see ----------------------
-- Each returns a plan { op, args, sure, check, release, ... } or nil if nothing fits now.

local gens = {}
local function gen(name, weight, fn) gens[#gens + 1] = { name = name, weight = weight, fn = fn } end

local function free_stream(pred)
  local c = {}
  for _, s in ipairs(streams) do
    if not s.retired and pred(s) then c[#c + 1] = s end
  end
  return c[1] and pick(c) or nil
end
local function free_file(want_write)
  local c = {}
  for _, f in ipairs(files) do
    if not f.writer and (not want_write or (f.readers == 0 and f.pins == 0)) then
      c[#c + 1] = f
    end
  end
  return c[1] and pick(c) or nil
end

gen("nop", 4, function()
  return { op = "nop", args = {}, sure = true, silent_ok = true,
           check = function(_, res)
             check(res == 0 or cancelled(res), "nop: %d", res)
           end }
end)

gen("timeout", 4, function()
  local long = chance(0.25)
  local secs = long and rnd(5, 1000) + rnd() or rnd() * 0.02
  local count = chance(0.3) and rnd(0, 3) or nil
  local mode = nil
  local arg1 = secs
  if not long and chance(0.3) then
    if chance(0.7) then
      mode, arg1 = "absolute", now() + secs
    else
      mode, arg1 = "realtime", os.time() - 1
    end
  end
  return { op = "timeout", args = { arg1, count, mode }, nargs = 3, sure = not long,
           target_kind = "timeout",
           check = function(req, res)
             local okres = res == -E.ETIME or res == -E.ECANCELED or
                           (count and count > 0 and res == 0)
             if mode == "realtime" and res == -E.EINVAL then okres = true end  -- before 5.15
             check(okres, "timeout(%s, %s, %s): %d", tostring(arg1), tostring(count),
                   tostring(mode), res)
             req.final_res = res
             if req.removed then
               check(res == -E.ECANCELED, "timeout_remove said 0 but the timeout ended with %d",
                     res)
             end
           end }
end)

local function pick_target(kind)
  local live = {}
  for i = #targets, 1, -1 do
    local t = targets[i]
    if t.done or t.R ~= R or t.R.closed then
      table.remove(targets, i)
    elseif kind == nil or t.target_kind == kind then
      live[#live + 1] = t
    end
  end
  return live[1] and pick(live) or nil
end

-- cancel, timeout_remove, poll_remove: a live target, a stale handle, or a made-up one.
local function remover(op, kind)
  return function()
    local t = pick_target(kind)
    local h, stale, ended
    if t and chance(0.8) then
      stale = false
      h = t.h
    elseif R.finished[1] and chance(0.5) then
      h, stale, ended = pick(R.finished), true, true
    else
      h, stale = rnd(1, 1 << 40), true
    end
    local ok_set = { [0] = true, [-E.ENOENT] = true, [-E.EALREADY] = true }
    return { op = op, args = { h }, sure = true,
             check = function(_, res)
               if stale then
                 -- A request that ran in an io-wq worker is that worker's current work
                 -- from a moment before its CQE is posted until a moment after: a cancel
                 -- by its user_data in that moment finds it running (-EALREADY) although
                 -- its callback ran (seen on 5.10 as user km, seed 46144171004: a
                 -- file read's handle).
                 check(res == -E.ENOENT or cancelled(res) or
                       (ended and op == "cancel" and res == -E.EALREADY),
                       "%s of a stale handle %d: %d", op, h, res)
               else
                 check(ok_set[res] or cancelled(res), "%s: %d", op, res)
               end
               if res == 0 and t and (op ~= "cancel" or t.target_kind == "timeout" or
                                      t.target_kind == "poll") then
                 t.removed = true
                 if t.done and t.final_res then
                   check(t.final_res == -E.ECANCELED, "%s said 0 but %s ended with %d", op, t.op,
                         t.final_res)
                 end
               end
             end }
  end
end
gen("cancel", 2, remover("cancel", nil))
gen("timeout_remove", 1, remover("timeout_remove", "timeout"))
gen("poll_remove", 1, remover("poll_remove", "poll"))

gen("cancel_fd", 0.5, function()
  local s = free_stream(function() return true end)
  local fd = s and s.rfd or devnull
  return { op = "cancel_fd", args = { fd }, sure = true,
           started = function() busy({ fd }, 1) end,
           release = function(req) if req.h and req.done then busy({ fd }, -1) end end,
           check = function(_, res)
             check(res >= 0 or res == -E.ENOENT or res == -E.EINVAL or cancelled(res),
                   "cancel_fd: %d", res)
           end }
end)
gen("cancel_all", 0.3, function()
  return { op = "cancel_all", args = {}, sure = true,
           check = function(_, res)
             check(res >= 0 or res == -E.EINVAL or cancelled(res), "cancel_all: %d", res)
           end }
end)

-- Polls: on a pipe's read end (fires with data), a write end with room, /dev/null.
local function poll_plan(op)
  local fd, events, sure = devnull, pick({ "r", "w", "rw", luring.poll.IN | luring.poll.OUT }), true
  local s = free_stream(function() return true end)
  local holds = nil
  if s and chance(0.7) then
    if chance(0.5) then
      -- A read may take the bytes before the poll looks: a poll_add holds the reader
      -- (a multishot one, which only a cancel ends, is never sure instead).
      fd, events, sure = s.rfd, "r", confirmed(s) > 0
      if op == "poll_add" then
        if s.rbusy then return nil end
        holds = s
      else
        sure = false
      end
    else
      fd, events, sure = s.wfd, "w", s.kind == "pipe" and #s.buf < 4096
    end
  end
  busy({ fd }, 1)
  if holds then holds.rbusy = true end
  local target, fixed
  if fd == devnull then
    target, fixed = fd_or_handle("n", nil, fd)
  elseif s and fd == s.rfd then
    target, fixed = fd_or_handle("r", s, fd)
  else
    target, fixed = fd_or_handle("w", s, fd)
  end
  return { op = op, args = { target, events }, sure = sure and op == "poll_add", fixed = fixed,
           multishot = op == "poll_multishot", target_kind = "poll",
           release = function(req)
             if req.h and not req.done then return end
             busy({ fd }, -1)
             if holds then holds.rbusy = false end
           end,
           check = function(req, res, final)
             -- (A kernel before 5.13 refuses the multishot flag: -EINVAL.)
             check(res > 0 or cancelled(res) or (op == "poll_multishot" and res == -E.EINVAL),
                   "%s(%d, %s): %d", op, fd, tostring(events), res)
             if final then
               req.final_res = res
               if req.removed then
                 check(res == -E.ECANCELED, "poll_remove said 0 but the poll ended with %d", res)
               end
             end
           end }
end
gen("poll_add", 2, function() return poll_plan("poll_add") end)
gen("poll_multishot", 1, function() return poll_plan("poll_multishot") end)

-- Stream writes: write, writev, send, sendmsg, send_zc.
local function stream_writer(op0)
  return function()
    local op = op0
    local s = free_stream(function(s) return not s.wbusy end)
    if not s then return nil end
    if op ~= "write" and op ~= "writev" and op ~= "write_fixed" and s.kind == "pipe" then
      op = "write"
    end
    -- A socket that is shut (or whose peer went) raises SIGPIPE for write(2): only sends
    -- with MSG_NOSIGNAL go to those.
    if s.shut and (op == "write" or op == "writev" or op == "write_fixed") then op = "send" end
    local n = some_size()
    if s.kind ~= "pipe" and n > 8000 then n = rnd(1, 8000) end
    -- write_fixed: bytes at..at+n-1 of a registered buffer.
    local fe, at
    if op == "write_fixed" then
      fe = kernel_has.write_fixed and fixed_buffer()
      if not fe then return nil end
      at = rnd(1, fe.size)
      n = rnd(0, fe.size - at + 1)
    end
    local data = payload(n)
    local wfd, fixed = fd_or_handle("w", s, s.wfd)
    local args
    if op == "write" then
      args = { wfd, data, chance(0.5) and 0 or -1 }
    elseif op == "write_fixed" then
      fe.ref[1]:set(data, at)
      args = { wfd, fe.ref[1], chance(0.5) and 0 or -1, n, at }
    elseif op == "writev" then
      local parts, i = {}, 1
      while i <= #data or #parts == 0 do
        local k = rnd(0, 700)
        parts[#parts + 1] = data:sub(i, i + k - 1)
        i = i + k
        if #parts >= 8 then
          parts[#parts + 1] = data:sub(i)
          break
        end
      end
      data = table.concat(parts)
      args = { wfd, parts, chance(0.5) and 0 or -1 }
    elseif op == "send" then
      args = { wfd, data, luring.msg.NOSIGNAL }
    elseif op == "sendmsg" then
      args = { wfd, data, nil, luring.msg.NOSIGNAL }
    else -- send_zc
      -- On 6.18 a send_zc after any IO_DRAIN on the ring never starts (finding F5).
      if not kernel_has.send_zc or R.drained_ever then return nil end
      args = { wfd, data, luring.msg.NOSIGNAL }
    end
    local fd = s.wfd
    -- Sure when the bytes fit in the buffer (a pipe holds 64 KiB; sockets less for many
    -- small writes, so stay well under).
    local room = s.kind == "pipe" and 65536 or 16384
    local sure = #s.buf + #data <= room and not s.shut
    if s.kind ~= "pipe" and s.writes_unread and s.writes_unread > 20 then sure = false end
    local plan = { op = op, args = args, nargs = #args, sure = sure, fixed = fixed,
             note = fmt("[stream %d%s]", s.id, sure and ", sure" or ""),
             started = function() stream_write_begin(s, data); busy({ fd }, 1) end,
             unstart = function()
               s.buf = s.buf:sub(1, #s.buf - #data)
               s.pend_total, s.pend_left, s.pcons, s.wbusy = 0, 0, 0, false
               busy({ fd }, -1)
             end,
             release = function(req)
               if req.h then
                 if not req.done then return end  -- ring closed: retired elsewhere
                 busy({ fd }, -1)
               end
             end,
             check = function(_, res)
               if op == "send_zc" and s.kind == "unix" and res == -E.EOPNOTSUPP then res = 0 end
               if s.shut then
                 check(res == -E.EPIPE or res == #data or cancelled(res) or res >= 0,
                       "%s after shutdown: %d", op, res)
               else
                 check(res >= 0 and res <= #data or cancelled(res) or
                       (s.kind == "tcp" and (res == -E.ECONNRESET or res == -E.EPIPE)) or
                       (s.nb_w and res == -E.EAGAIN),
                       "%s(%d bytes) on %s: %d", op, #data, s.kind, res)
                 if s.kind ~= "pipe" and op ~= "write" and op ~= "writev" and res >= 0 and
                    res < #data then
                   -- Stream sockets send all of a blocking send unless interrupted.
                   log("  short %s: %d of %d", op, res, #data)
                 end
               end
               stream_write_end(s, res, op)
               s.writes_unread = (s.writes_unread or 0) + 1
             end }
    return fe and holding_buffer(plan, fe) or plan
  end
end
gen("write_stream", 4, stream_writer("write"))
gen("writev_stream", 1.5, stream_writer("writev"))
gen("send", 3, stream_writer("send"))
gen("sendmsg", 1, stream_writer("sendmsg"))
gen("send_zc", 1, stream_writer("send_zc"))
gen("write_fixed_stream", 1.5, stream_writer("write_fixed"))

-- A reader's plan holds its stream (rbusy) and descriptor from start to its end.
local function reading(s, plan)
  local fd = s.rfd
  plan.started = function() s.rbusy = true; busy({ fd }, 1) end
  plan.unstart = function() s.rbusy = false; busy({ fd }, -1) end
  plan.release = function(req)
    if req.h and req.done then
      busy({ fd }, -1)
      s.rbusy = false
    end
  end
  return plan
end

-- Stream reads: read, readv, recv (flags), recvmsg.
local function stream_reader(op0)
  return function()
    local op = op0
    local s = free_stream(function(s) return not s.rbusy end)
    if not s then return nil end
    if s.kind == "pipe" and op ~= "read" and op ~= "readv" and op ~= "read_into" and
       op ~= "read_fixed" then
      op = op == "recv_into" and "read_into" or "read"
    end
    local n = chance(0.05) and 0 or rnd(1, chance(0.2) and 70000 or 4096)
    local flags, peek, nowait = 0, false, false
    local args, sizes
    -- The buffer forms read into bytes at..at+n-1 of a buffer filled with "#" first;
    -- the check reads them back and sees the rest of the buffer untouched.
    local buf, at = nil, 1
    if op == "read_into" or op == "recv_into" then
      at = rnd(1, 40)
      buf = luring.buffer(at + n + rnd(0, 40))
      buf:set(("#"):rep(#buf))
    end
    -- read_fixed: the same in a registered buffer.
    local fe
    if op == "read_fixed" then
      fe = kernel_has.read_fixed and fixed_buffer()
      if not fe then return nil end
      buf = fe.ref[1]
      at = rnd(1, math.min(40, fe.size))
      n = chance(0.05) and 0 or rnd(1, fe.size - at + 1)
      buf:set(("#"):rep(#buf))
    end
    local rfd, fixed = fd_or_handle("r", s, s.rfd)
    if op == "read" then
      args = { rfd, n, chance(0.5) and 0 or -1 }
    elseif op == "read_into" or op == "read_fixed" then
      args = { rfd, buf, chance(0.5) and 0 or -1, n, at }
    elseif op == "readv" then
      sizes = {}
      local total = 0
      for i = 1, rnd(1, 6) do
        sizes[i] = rnd(0, 1500)
        total = total + sizes[i]
      end
      n = total
      args = { rfd, sizes, chance(0.5) and 0 or -1 }
    elseif op == "recv" or op == "recvmsg" then
      local r = rnd()
      if r < 0.2 then
        flags, nowait = luring.msg.DONTWAIT, true
      elseif r < 0.3 then
        flags, peek = luring.msg.PEEK, true
      elseif r < 0.35 and n <= confirmed(s) then
        flags = luring.msg.WAITALL
      end
      args = { rfd, n, flags }
    elseif op == "recv_into" then
      if chance(0.2) then flags, nowait = luring.msg.DONTWAIT, true end
      args = { rfd, buf, flags, n, at }
    end
    -- A read of 0 bytes of an empty pipe or stream socket may wait too: at once with 0
    -- on 6.18, but 6.1 waits for data (seen in its QEMU guest: still waiting after 1 s),
    -- and a stream socket does on every kernel (sock_rcvlowat is at least 1).
    local sure = nowait or confirmed(s) > 0 or
                 (s.shut and s.kind ~= "pipe")
    local plan = reading(s, { op = op, args = args, nargs = #args, sure = sure, fixed = fixed,
             note = fmt("[stream %d, %d there%s]", s.id, confirmed(s), sure and ", sure" or ""),
             check = function(_, res, _, data, peer)
               if buf then
                 local got = res > 0 and res or 0
                 data = buf:get(at, at + got - 1)
                 check(buf:get(1, at - 1) == ("#"):rep(at - 1) and
                       buf:get(at + got) == ("#"):rep(#buf - at - got + 1),
                       "%s: bytes outside at..at+res-1 changed (at %d, res %d)", op, at, res)
               end
               if op == "readv" then
                 check(type(data) == "table" and #data == #sizes, "readv: %s", tostring(data))
                 local got = {}
                 for i, part in ipairs(data) do
                   check(#part <= sizes[i], "readv part %d: %d > %d", i, #part, sizes[i])
                   got[i] = part
                 end
                 -- Full parts, then the one res ends in, then empty ones.
                 local left = res > 0 and res or 0
                 for i, part in ipairs(data) do
                   local want = math.min(sizes[i], left)
                   check(#part == want, "readv part %d: %d bytes, expected %d (res %d)", i,
                         #part, want, res)
                   left = left - want
                 end
                 data = table.concat(got)
               end
               check(type(data) == "string", "%s: data is %s", op, type(data))
               if res < 0 then
                 check(data == "", "%s failed (%d) with data", op, res)
                 check(cancelled(res) or ((nowait or s.nb_r) and res == -E.EAGAIN) or
                       (s.kind == "tcp" and res == -E.ECONNRESET), "%s on %s: %d", op, s.kind, res)
               else
                 check(#data == res, "%s: %d bytes for res %d", op, #data, res)
                 check(res <= n, "%s: %d > %d asked", op, res, n)
                 if res == 0 and n > 0 then
                   check(s.shut and confirmed(s) == 0, "%s: end of stream on an open %s", op,
                         s.kind)
                 end
                 if peek then
                   local want = s.buf:sub(1, res)
                   check(want == data, "recv PEEK got other bytes than are there")
                 else
                   stream_consume(s, data, op)
                   s.writes_unread = 0
                 end
               end
               if op == "recvmsg" then
                 check(peer == nil or type(peer) == "table", "recvmsg peer %s", tostring(peer))
               end
             end })
    return fe and holding_buffer(plan, fe) or plan
  end
end
gen("read_stream", 4, stream_reader("read"))
gen("readv_stream", 1.5, stream_reader("readv"))
gen("recv", 3, stream_reader("recv"))
gen("recvmsg", 1, stream_reader("recvmsg"))
gen("read_into", 1.5, stream_reader("read_into"))
gen("recv_into", 1.5, stream_reader("recv_into"))
gen("read_fixed_stream", 1.5, stream_reader("read_fixed"))

-- recv_multishot on a stream socket: a completion per chunk from the ring's provided
-- buffers, each chunk the next bytes written, until it ends: end of stream (0), out of
-- buffers (-ENOBUFS), cancelled, or before 6.0 -EINVAL at once.
gen("recv_multishot", 1.5, function()
  local s = free_stream(function(s) return not s.rbusy and s.kind ~= "pipe" end)
  if not s then return nil end
  local target, fixed = fd_or_handle("r", s, s.rfd)
  local flags = chance(0.2) and luring.msg.DONTWAIT or 0
  return reading(s, { op = "recv_multishot", args = { target, flags }, nargs = 2, sure = false,
           fixed = fixed,
           multishot = true, note = fmt("[stream %d, %d there]", s.id, confirmed(s)),
           check = function(req, res, final, data, more)
             check(type(data) == "string" and type(more) == "boolean",
                   "recv_multishot: data %s, more %s", type(data), tostring(more))
             if res > 0 then
               check(#data == res, "recv_multishot: %d bytes for res %d", #data, res)
               stream_consume(s, data, "recv_multishot")
               s.writes_unread = 0
               return
             end
             check(final, "recv_multishot: res %d with more", res)
             check(data == "", "recv_multishot: data with res %d", res)
             if res == 0 then
               check(s.shut and confirmed(s) == 0, "recv_multishot: end of stream on an open %s",
                     s.kind)
             else
               check(cancelled(res) or res == -E.ENOBUFS or
                     (res == -E.EINVAL and req.calls == 1) or
                     (flags ~= 0 and res == -E.EAGAIN) or
                     (s.kind == "tcp" and res == -E.ECONNRESET),
                     "recv_multishot on %s: %d", s.kind, res)
             end
           end })
end)

-- sendmsg to a connected unix socket with an address: the kernel refuses (EISCONN).
gen("sendmsg_peer", 0.3, function()
  local s = free_stream(function(s) return not s.wbusy and s.kind == "unix" end)
  if not s then return nil end
  local peer = chance(0.5) and { family = "unix", path = scratch .. "/sock" } or
               { family = "inet", address = "127.0.0.1", port = 9 }
  return { op = "sendmsg", args = { s.wfd, "x", peer, 0 }, nargs = 4, sure = true,
           started = function() s.wbusy = true end,
           release = function(req) if req.h and req.done then s.wbusy = false end end,
           check = function(_, res)
             check(res == -E.EISCONN or res == -E.EOPNOTSUPP or cancelled(res),
                   "sendmsg with a peer on a connected unix socket: %d", res)
           end }
end)

-- /dev/null: reads give 0, writes take everything.
gen("devnull", 1, function()
  local target, fixed = fd_or_handle("n", nil, devnull)
  if R.reg and R.reg.empty and chance(0.1) then
    -- A handle of an empty slot (-1): the kernel has no file there.
    return { op = "read", args = { R.reg.empty, 1, 0 }, sure = true, fixed = true, no_file = true,
             check = function(_, res)
               check(res == -E.EBADF or cancelled(res), "read of an empty slot: %d", res)
             end }
  end
  if chance(0.5) then
    local data = payload(some_size())
    return { op = "write", args = { target, data, 0 }, sure = true, silent_ok = true, fixed = fixed,
             check = function(_, res)
               check(res == #data or cancelled(res), "write /dev/null: %d", res)
             end }
  end
  return { op = "read", args = { target, rnd(0, 100), 0 }, sure = true, fixed = fixed,
           check = function(_, res, _, data)
             check((res == 0 and data == "") or cancelled(res), "read /dev/null: %d", res)
           end }
end)

-- Files: reads check the content; writes change the model when they end.
local function file_reader(op)
  return function()
    local f = free_file(false)
    if not f then return nil end
    local off = rnd(0, #f.content + 100)
    local n = rnd(0, 9000)
    local sizes
    local args
    local fd, fixed = fd_or_handle("f", f, f.fd)
    local fe, buf, at
    if op == "readv" then
      sizes = {}
      n = 0
      for i = 1, rnd(1, 5) do
        sizes[i] = rnd(0, 3000)
        n = n + sizes[i]
      end
      args = { fd, sizes, off }
    elseif op == "read_fixed" then
      -- Into bytes at..at+n-1 of a registered buffer filled with "#" first.
      fe = kernel_has.read_fixed and fixed_buffer()
      if not fe then return nil end
      buf = fe.ref[1]
      at = rnd(1, math.min(40, fe.size))
      n = rnd(0, fe.size - at + 1)
      buf:set(("#"):rep(#buf))
      args = { fd, buf, off, n, at }
    else
      args = { fd, n, off }
    end
    local plan = { op = op, args = args, sure = true, fixed = fixed,
             started = function() f.readers = f.readers + 1 end,
             unstart = function() f.readers = f.readers - 1 end,
             release = function(req) if req.h and req.done then f.readers = f.readers - 1 end end,
             check = function(_, res, _, data)
               if op == "readv" then
                 check(type(data) == "table", "readv data")
                 data = table.concat(data)
               end
               if buf then
                 local got = res > 0 and res or 0
                 data = buf:get(at, at + got - 1)
                 check(buf:get(1, at - 1) == ("#"):rep(at - 1) and
                       buf:get(at + got) == ("#"):rep(#buf - at - got + 1),
                       "%s: bytes outside at..at+res-1 changed (at %d, res %d)", op, at, res)
               end
               if cancelled(res) then return end
               local want = f.content:sub(off + 1, off + n)
               -- A short read of a regular file happens (a readv of a just-extended file
               -- stopped at a page boundary): fewer bytes, never others.
               check(res >= 0 and res <= #want and (res > 0 or #want == 0 or n == 0),
                     "%s(%d, %d) of a %d-byte file: res %d, expected %d", op, n, off,
                     #f.content, res, #want)
               if res < #want then log("  short %s: %d of %d", op, res, #want) end
               check(data == want:sub(1, res), "%s(%d, %d): other bytes than the file holds", op,
                     n, off)
             end }
    return fe and holding_buffer(plan, fe) or plan
  end
end
gen("read_file", 3, file_reader("read"))
gen("readv_file", 1, file_reader("readv"))
gen("read_fixed_file", 1.5, file_reader("read_fixed"))

local function file_writer(op)
  return function()
    local f = free_file(true)
    if not f then return nil end
    local off = rnd(0, math.min(#f.content + 200, 60000))
    local data = payload(some_size() % 9000)
    local args, parts
    local fd, fixed = fd_or_handle("f", f, f.fd)
    local fe
    if op == "write_fixed" then
      -- Bytes at..at+#data-1 of a registered buffer.
      fe = kernel_has.write_fixed and fixed_buffer()
      if not fe then return nil end
      local at = rnd(1, fe.size)
      data = payload(rnd(0, fe.size - at + 1))
      fe.ref[1]:set(data, at)
      args = { fd, fe.ref[1], off, #data, at }
    elseif op == "writev" then
      parts = {}
      local i = 1
      repeat
        local k = rnd(0, 2000)
        parts[#parts + 1] = data:sub(i, i + k - 1)
        i = i + k
      until i > #data or #parts >= 6
      data = table.concat(parts)
      args = { fd, parts, off }
    else
      args = { fd, data, off }
    end
    local plan = { op = op, args = args, sure = true, fixed = fixed,
             silent_ok = op == "write" or op == "write_fixed",
             started = function() f.writer = true end,
             unstart = function() f.writer = false end,
             release = function(req)
               if req.h and (req.done or req.silent_done) then f.writer = false end
             end,
             silent_success = function() file_write_model(f, off, data) end,
             check = function(_, res)
               if cancelled(res) then
                 -- Cancelled before or while writing: what landed is unknown.
                 file_resync(f)
                 return
               end
               check(res == #data, "%s(%d bytes at %d) to a file: %d", op, #data, off, res)
               file_write_model(f, off, data)
             end }
    return fe and holding_buffer(plan, fe) or plan
  end
end
gen("write_file", 2, file_writer("write"))
gen("writev_file", 1, file_writer("writev"))
gen("write_fixed_file", 1.5, file_writer("write_fixed"))

gen("statx_file", 1.5, function()
  local f = free_file(false)
  if not f then return nil end
  local by_fd = chance(0.5)
  local flags = chance(0.3) and luring.at.SYMLINK_NOFOLLOW or nil
  return { op = "statx", args = { by_fd and f.fd or f.path, flags }, nargs = 2, sure = true,
           started = function() f.readers = f.readers + 1 end,
           unstart = function() f.readers = f.readers - 1 end,
           release = function(req) if req.h and req.done then f.readers = f.readers - 1 end end,
           check = function(_, res, _, st)
             if cancelled(res) then return end
             check(res == 0 and type(st) == "table", "statx file: %d", res)
             check(st.size == #f.content, "statx size %s, the model has %d", tostring(st.size),
                   #f.content)
             check(st.type == "file", "statx type %s", tostring(st.type))
           end }
end)

gen("fsync", 1, function()
  local f = free_file(false)
  if not f then return nil end
  local fd, fixed = fd_or_handle("f", f, f.fd)
  return { op = "fsync", args = { fd, chance(0.5) }, sure = true, silent_ok = true, fixed = fixed,
           started = function() f.readers = f.readers + 1 end,
           unstart = function() f.readers = f.readers - 1 end,
           release = function(req)
             if req.h and (req.done or req.silent_done) then f.readers = f.readers - 1 end
           end,
           check = function(_, res) check(res == 0 or cancelled(res), "fsync: %d", res) end }
end)

gen("ftruncate_fallocate", 1, function()
  local f = free_file(true)
  if not f then return nil end
  local op, args, model
  local fixed = false
  if chance(0.5) and kernel_has.ftruncate then
    local len = rnd(0, 30000)
    op, args = "ftruncate", { f.fd, len }
    model = function()
      local c = f.content
      f.content = #c >= len and c:sub(1, len) or c .. string.rep("\0", len - #c)
    end
  else
    local mode = pick({ 0, luring.falloc.KEEP_SIZE,
                        luring.falloc.KEEP_SIZE | luring.falloc.PUNCH_HOLE })
    local off, len = rnd(0, 30000), rnd(1, 10000)
    local fd
    fd, fixed = fd_or_handle("f", f, f.fd)
    op, args = "fallocate", { fd, mode, off, len }
    model = function()
      local c = f.content
      if mode == 0 then
        if off + len > #c then f.content = c .. string.rep("\0", off + len - #c) end
      elseif mode ~= luring.falloc.KEEP_SIZE then  -- punch a hole: zeros inside the size
        local a, b = off, math.min(off + len, #c)
        if a < b then f.content = c:sub(1, a) .. string.rep("\0", b - a) .. c:sub(b + 1) end
      end
    end
  end
  return { op = op, args = args, sure = true, fixed = fixed,
           started = function() f.writer = true end,
           release = function(req) if req.h and req.done then f.writer = false end end,
           check = function(_, res)
             if res == -E.EOPNOTSUPP or res == -E.EINVAL and not kernel_has[op] then return end
             if cancelled(res) then file_resync(f) return end
             check(res == 0, "%s: %d", op, res)
             model()
             log("  file %d: %s, %d bytes", f.fd, op, #f.content)
           end }
end)

-- splice and tee: pipe to pipe, file to pipe, pipe to file.
gen("splice_tee", 1.5, function()
  if not kernel_has.splice or not kernel_has.tee then return nil end  -- 5.7, 5.8
  local nb = chance(0.5) and luring.splice_f.NONBLOCK or 0
  local r = rnd()
  if r < 0.35 then
    -- file -> pipe
    local f = free_file(false)
    local out_s = free_stream(function(s)
      return s.kind == "pipe" and not s.wbusy and not s.rbusy
    end)
    if not f or not out_s then return nil end
    local off, n = rnd(0, #f.content + 10), rnd(0, 5000)
    return { op = "splice", args = { f.fd, off, out_s.wfd, -1, n, nb }, sure = #out_s.buf < 32768,
             started = function()
               f.readers = f.readers + 1
               out_s.wbusy, out_s.rbusy = true, true
               busy({ out_s.wfd }, 1)
             end,
             release = function(req)
               if req.h and req.done then
                 f.readers = f.readers - 1
                 out_s.wbusy, out_s.rbusy = false, false
                 busy({ out_s.wfd }, -1)
               end
             end,
             check = function(_, res)
               if res < 0 then
                 check(splice_cancelled(res) or res == -E.EAGAIN or res == -E.EINVAL,
                       "splice file->pipe: %d", res)
                 return
               end
               local want = f.content:sub(off + 1, off + n)
               check(res <= #want, "splice file->pipe moved %d, at most %d there", res, #want)
               stream_append(out_s, want:sub(1, res), { f })
             end }
  end
  local in_s = free_stream(function(s) return s.kind == "pipe" and not s.rbusy end)
  if not in_s then return nil end
  if r < 0.6 then
    -- pipe -> file
    local f = free_file(true)
    if not f then return nil end
    local off, n = rnd(0, #f.content + 10), rnd(0, 5000)
    return { op = "splice", args = { in_s.rfd, -1, f.fd, off, n, nb },
             sure = confirmed(in_s) > 0 or nb ~= 0,
             started = function()
               in_s.rbusy = true
               f.writer = true
               busy({ in_s.rfd }, 1)
             end,
             release = function(req)
               if req.h and req.done then
                 in_s.rbusy = false
                 f.writer = false
                 busy({ in_s.rfd }, -1)
               end
             end,
             check = function(_, res)
               if res < 0 then
                 check(splice_cancelled(res) or res == -E.EAGAIN, "splice pipe->file: %d", res)
                 if splice_cancelled(res) then file_resync(f) end
                 return
               end
               check(res <= n, "splice pipe->file: %d > %d", res, n)
               local moved = in_s.buf:sub(1, res)
               check(#moved == res, "splice moved %d bytes, the pipe had %d", res, #in_s.buf)
               stream_consume(in_s, moved, "splice")
               file_write_model(f, off, moved)
             end }
  end
  -- pipe -> pipe: splice (moves) or tee (copies)
  local out_s = free_stream(function(s)
    return s.kind == "pipe" and s ~= in_s and not s.wbusy and not s.rbusy
  end)
  if not out_s then return nil end
  local op = chance(0.5) and "splice" or "tee"
  local n = rnd(0, 5000)
  local args = op == "splice" and { in_s.rfd, -1, out_s.wfd, -1, n, nb } or
               { in_s.rfd, out_s.wfd, n, nb }
  return { op = op, args = args, sure = (confirmed(in_s) > 0 or nb ~= 0) and #out_s.buf < 32768,
           started = function()
             in_s.rbusy = true
             out_s.wbusy, out_s.rbusy = true, true
             busy({ in_s.rfd, out_s.wfd }, 1)
           end,
           release = function(req)
             if req.h and req.done then
               in_s.rbusy = false
               out_s.wbusy, out_s.rbusy = false, false
               busy({ in_s.rfd, out_s.wfd }, -1)
             end
           end,
           check = function(_, res)
             if res < 0 then
               check(splice_cancelled(res) or res == -E.EAGAIN or res == -E.EINVAL,
                     "%s pipe->pipe: %d", op, res)
               return
             end
             check(res <= n, "%s: %d > %d", op, res, n)
             local moved = in_s.buf:sub(1, res)
             check(#moved == res, "%s moved %d bytes, the pipe had %d", op, res, #in_s.buf)
             local files_in = pinned_files(in_s)
             if op == "splice" then stream_consume(in_s, moved, "splice") end
             stream_append(out_s, moved, files_in)
           end }
end)

-- The scratch directory: each op's result follows from the name's state.
local function free_name()
  local c = {}
  for _, n in ipairs(names) do if not nsbusy[n] then c[#c + 1] = n end end
  return c[1] and pick(c) or nil
end
local function name_plan(op, args, list, expect, apply, extra)
  if not kernel_has[op] then return nil end  -- an older kernel: unlinkat 5.11, mkdirat 5.15...
  for _, n in ipairs(list) do nsbusy[n] = true end
  local plan = { op = op, args = args, nargs = #args, sure = true,
                 release = function(req)
                   if req.h and req.done or not req.h then
                     for _, n in ipairs(list) do nsbusy[n] = nil end
                   end
                 end,
                 check = function(req, res, _, ...)
                   if cancelled(res) and not (op == "openat" and res >= 0) then
                     req.plan.unknown = true
                     return
                   end
                   if not kernel_has[op] then return end
                   local want = expect
                   if type(want) == "function" then want = want() end
                   if want == "fd" then
                     check(res >= 0, "%s(%s): %d, expected a descriptor", op,
                           describe(args, #args), res)
                     own(res, "openat")
                   else
                     check(res == want, "%s(%s): %d, expected %d (names: a=%s b=%s c=%s d=%s)", op,
                           describe(args, #args), res, want, tostring(ns.a), tostring(ns.b),
                           tostring(ns.c), tostring(ns.d))
                   end
                   if apply and res >= 0 then
                     apply()
                     log("  names now: a=%s b=%s c=%s d=%s", tostring(ns.a), tostring(ns.b),
                         tostring(ns.c), tostring(ns.d))
                   end
                   if extra then extra(res, ...) end
                 end }
  plan.started = function() end
  return plan
end
gen("scratch", 3, function()
  local a = free_name()
  if not a then return nil end
  local t = ns[a]
  local r = rnd()
  if r < 0.15 then
    return name_plan("mkdirat", { spath(a), chance(0.5) and 448 or nil }, { a },
                     t and -E.EEXIST or 0, function() ns[a], nsid[a] = "directory", new_id() end)
  elseif r < 0.3 then
    local dir = chance(0.5)
    local want
    if not t then want = -E.ENOENT
    elseif dir then want = t == "directory" and 0 or -E.ENOTDIR
    else want = t == "directory" and -E.EISDIR or 0 end
    return name_plan("unlinkat", { spath(a), dir }, { a }, want, function()
      ns[a], nsid[a] = nil, nil
    end)
  elseif r < 0.42 then
    return name_plan("symlinkat", { DANGLING, spath(a) }, { a }, t and -E.EEXIST or 0,
                     function() ns[a], nsid[a] = "link", new_id() end)
  elseif r < 0.62 then
    local modes = { "r", "w", "a", "r+", "w+", "a+", "rb", "w+b" }
    local mode = pick(modes)
    local creates = mode:sub(1, 1) ~= "r"
    local want
    if t == nil then want = creates and "fd" or -E.ENOENT
    elseif t == "file" then want = "fd"
    elseif t == "directory" then want = mode == "r" or mode == "rb" and "fd" or -E.EISDIR
    else want = -E.ENOENT end  -- a dangling link (its target's directory does not exist)
    if t == "directory" and (mode == "r" or mode == "rb") then want = "fd" end
    return name_plan("openat", { spath(a), mode, chance(0.5) and 420 or nil }, { a }, want,
                     function() if t == nil then ns[a], nsid[a] = "file", new_id() end end)
  elseif r < 0.75 then
    local follow = chance(0.5)
    local flags = nil
    if not follow then flags = luring.at.SYMLINK_NOFOLLOW end
    local want, ty = 0, t
    if t == nil or (t == "link" and follow) then want = -E.ENOENT end
    return name_plan("statx", { spath(a), flags }, { a }, want, nil, function(res, st)
      if res == 0 then
        check(st and st.type == ty, "statx(%s) type %s, the model says %s", a,
              tostring(st and st.type), tostring(ty))
      else
        check(st == nil, "failed statx with a table")
      end
    end)
  else
    local b = free_name()
    if not b then return nil end
    local tb = ns[b]
    if chance(0.5) then
      local want
      local flags = chance(0.3) and luring.rename.NOREPLACE or nil
      if not t then want = -E.ENOENT
      elseif a == b then want = flags and -E.EEXIST or 0
      elseif flags and tb then want = -E.EEXIST
      elseif tb == "directory" and t ~= "directory" then want = -E.EISDIR
      elseif t == "directory" and tb and tb ~= "directory" then want = -E.ENOTDIR
      else want = 0 end
      if a == b and not flags then want = t and 0 or -E.ENOENT end
      -- Two hard links of one inode: rename(2) does nothing and succeeds.
      local same = a ~= b and t and tb and nsid[a] == nsid[b]
      if same and not flags then want = 0 end
      return name_plan("renameat", { spath(a), spath(b), flags }, { a, b }, want, function()
        if a ~= b and not same then
          ns[b], nsid[b] = t, nsid[a]
          ns[a], nsid[a] = nil, nil
        end
      end)
    else
      local want
      if not t then want = -E.ENOENT
      elseif tb then want = -E.EEXIST
      elseif t == "directory" then want = -E.EPERM
      else want = 0 end
      if a == b and t then want = -E.EEXIST end
      return name_plan("linkat", { spath(a), spath(b), nil }, { a, b }, want, function()
        ns[b], nsid[b] = t, nsid[a]
      end)
    end
  end
end)

-- Descriptors received: close them through the ring, or synchronously.
gen("close_fd", 1.5, function()
  local c = {}
  for fd, o in pairs(owned) do
    -- Only descriptors nothing else will look for (TCP sides wait to be paired).
    if not fdbusy[fd] and (o.kind == "socket" or o.kind == "openat") then c[#c + 1] = fd end
  end
  table.sort(c)
  if not c[1] or chance(0.15) then
    -- A number no descriptor has: -EBADF.
    return { op = "close_fd", args = { 999999 }, sure = true,
             check = function(_, res)
               check(res == -E.EBADF or cancelled(res), "close_fd(999999): %d", res)
             end }
  end
  local fd = pick(c)
  local o = owned[fd]
  if o.stream then return nil end  -- TCP pairs are closed together (tcp_close)
  if chance(0.3) then
    disown_close(fd)
    log("close_fd_now(%d)", fd)
    return nil
  end
  -- Not ours from the moment it is queued: once the kernel ran it, the number can come
  -- back from any open.
  return { op = "close_fd", args = { fd }, sure = true,
           started = function(req)
             owned[fd] = nil
             closing[fd] = o.id or true
             req.closing_fd = fd
           end,
           check = function(_, res)
             closing[fd] = nil
             if res == -E.ECANCELED then
               -- Cancelled before it ran: still open, so the number was not reused. (Any
               -- other result, -EINTR included, means the descriptor is gone: close(2)
               -- removes it even when it reports an error.)
               local ok = luring.close_fd_now(fd)
               if ok then log("  closed %d after a cancelled close_fd", fd) end
             else
               check(res == 0 or res == -E.EINTR, "close_fd(%d) of an owned descriptor: %d", fd,
                     res)
             end
           end }
end)

-- Sockets: socket, bind+listen, connect to the listener, accept, multishot_accept.
gen("socket", 1, function()
  local fam = pick({ "inet", "unix", "inet6", luring.af.INET })
  local ty = pick({ "stream", "dgram", luring.sock.STREAM | luring.sock.NONBLOCK })
  return { op = "socket", args = { fam, ty, nil }, nargs = 3, sure = true,
           check = function(_, res)
             if fam == "inet6" and res == -E.EAFNOSUPPORT then return end
             if cancelled(res) then return end
             check(res >= 0, "socket(%s, %s): %d", tostring(fam), tostring(ty), res)
             own(res, "socket")
           end }
end)

local function count_pending(kind)
  local n = 0
  for r in pairs(all_reqs) do if r.plan.kind == kind then n = n + 1 end end
  return n
end

local function accepted(res, peer, what, req_flags)
  if res < 0 then
    check(cancelled(res) or res == -E.EINVAL, "%s: %d", what, res)
    check(peer == nil, "%s failed with a peer", what)
    return
  end
  own(res, what)
  owned[res].nonblock = req_flags ~= nil and req_flags ~= 0
  check(type(peer) == "table" and peer.family == "inet" and peer.address == "127.0.0.1",
        "%s peer %s", what, tostring(peer and peer.address))
  local port = peer.port
  local client = connected_by_port[port]
  if stale_ports[port] then
    log("  %s: %d from port %d, whose client is gone or ambiguous: closed", what, res, port)
    disown_close(res)
    if client then
      connected_by_port[port] = nil
      disown_close(client)
    end
  elseif client then
    connected_by_port[port] = nil
    tcp_pair(client, res)
  else
    accepted_by_port[port] = res
  end
end

gen("accept", 1, function()
  if count_pending("accept") >= 3 then return nil end
  local flags = chance(0.3) and luring.sock.NONBLOCK or 0
  return { op = "accept", args = { listen_fd, flags }, sure = false, kind = "accept",
           target_kind = "accept",
           check = function(_, res, _, peer) accepted(res, peer, "accept", flags) end }
end)
gen("multishot_accept", 0.5, function()
  if count_pending("accept") >= 3 then return nil end
  return { op = "multishot_accept", args = { listen_fd, 0 }, sure = false, multishot = true,
           kind = "accept", target_kind = "accept",
           check = function(_, res, _, peer) accepted(res, peer, "multishot_accept") end }
end)

-- connect: a socket made synchronously here (the socket op is fuzzed above), then the
-- connect request; its end pairs it with the accepted side.
gen("connect", 1, function()
  if tcp_conns > 12 then return nil end
  local pend = 0
  for _, o in pairs(owned) do if o.connecting then pend = pend + 1 end end
  if pend >= 4 then return nil end
  local fd = sync_op(function(r, cb) return r:socket("inet", "stream", 0, cb) end)
  check(fd >= 0, "socket for connect: %d", fd)
  own(fd, "client")
  owned[fd].connecting = true
  local refused = chance(0.1)
  local port = refused and spare_port or listen_port
  return { op = "connect", args = { fd, "127.0.0.1", port }, sure = refused, kind = "connect",
           started = function() busy({ fd }, 1) end,
           release = function(req)
             if not req.h then
               owned[fd].connecting = false
             elseif req.done then
               busy({ fd }, -1)
             end
           end,
           check = function(_, res)
             owned[fd].connecting = false
             if refused then
               check(res == -E.ECONNREFUSED or cancelled(res), "connect to a closed port: %d", res)
               return
             end
             if res ~= 0 then
               check(cancelled(res) or res == -E.ECONNREFUSED, "connect: %d", res)
               return
             end
             local lport = luring.getsockname(fd).port
             local server = accepted_by_port[lport]
             if stale_ports[lport] then
               log("  connect: port %d is ambiguous: closed", lport)
               disown_close(fd)
               if server then
                 accepted_by_port[lport] = nil
                 disown_close(server)
               end
             elseif server then
               accepted_by_port[lport] = nil
               tcp_pair(fd, server)
             else
               connected_by_port[lport] = fd
             end
           end }
end)

gen("bind_listen", 0.3, function()
  local c = {}
  for fd, o in pairs(owned) do
    if o.kind == "socket" and not fdbusy[fd] and not o.bound then c[#c + 1] = fd end
  end
  table.sort(c)
  if not c[1] then return nil end
  local fd = pick(c)
  local o = owned[fd]
  local info = luring.getsockname(fd)
  local fam = info and info.family
  local op, args
  if fam == "inet" and chance(0.6) then
    op, args = "bind", { fd, "127.0.0.1", 0 }
  elseif fam == "unix" and chance(0.6) then
    op, args = "bind", { fd, "\0luring-fuzz-" .. SEED .. "-" .. fd, nil }
  else
    op, args = "listen", { fd, chance(0.5) and 8 or nil }
  end
  o.bound = true
  return { op = op, args = args, nargs = #args, sure = true,
           started = function() busy({ fd }, 1) end,
           release = function(req) if req.h and req.done then busy({ fd }, -1) end end,
           check = function(_, res)
             -- The socket's type decides (listen on a datagram socket: EOPNOTSUPP...);
             -- only sanity here.
             check(res <= 0, "%s: %d", op, res)
           end }
end)

-- shutdown: a socket pair's direction stops (its reader then sees the end).
gen("shutdown", 0.3, function()
  if not kernel_has.shutdown then return nil end  -- 5.11
  local s = free_stream(function(s)
    return s.kind == "unix" and not s.wbusy and not s.rbusy and not s.shut and
           not (fdbusy[s.wfd] and fdbusy[s.wfd] > 0)
  end)
  if not s then return nil end
  -- The reader is held too: a read racing the shutdown could see the end of the stream
  -- before the shutdown's callback said so.
  return { op = "shutdown", args = { s.wfd, chance(0.5) and "send" or luring.shut.WR }, sure = true,
           started = function() s.wbusy, s.rbusy = true, true end,
           release = function(req)
             if req.h and req.done then s.wbusy, s.rbusy = false, false end
           end,
           check = function(_, res)
             if cancelled(res) then return end
             check(res == 0, "shutdown: %d", res)
             s.shut = true
           end }
end)

-- ---- Chains ------------------------------------------------------------------------------------

-- ring:link{...}: plans from the generators that can be chained, maybe with a
-- link_timeout after one, soft or hard, silent members (CQE_SKIP_SUCCESS) in hard ones.
local chainable = { "nop", "timeout", "read_file", "write_file", "statx_file", "fsync", "devnull",
                    "read_fixed_file", "write_fixed_file", "write_fixed_stream",
                    "write_stream", "read_stream", "recv", "send" }
local gen_by_name = {}
for _, g in ipairs(gens) do gen_by_name[g.name] = g end

local function do_chain()
  local hard = chance(0.4)
  local n = rnd(1, 4)
  local too_long = false
  local plans = {}
  for _ = 1, n do
    local p = gen_by_name[pick(chainable)].fn()
    if p then
      -- Reserved now, so the next member's generator sees the stream or file taken.
      if p.started then p.started({}) end
      plans[#plans + 1] = p
      if p.op ~= "timeout" and chance(0.25) then
        plans[#plans + 1] = { op = "link_timeout", args = { rnd() * (chance(0.5) and 0.01 or 2) },
                              sure = true, check = function(_, res)
                                -- -EALREADY: it fired while the request it bounds was
                                -- running in a kernel worker (io-wq), which its cancel
                                -- cannot stop (as for async_cancel); seen on 5.10, where
                                -- a send linked after a statx is issued from io-wq.
                                check(res == -E.ETIME or res == -E.ECANCELED or res == -E.ENOENT or
                                      res == -E.EINVAL or res == -E.EALREADY,
                                      "link_timeout: %d", res)
                              end, is_lt = true }
      end
    end
  end
  if #plans == 0 or plans[1].is_lt then return end
  if #plans > R.sq then
    -- Longer than the SQ: raises (nil would mean "submit and retry", which never works).
    too_long = true
  end
  -- Finding F7: ring:close() cancels once (ASYNC_CANCEL_ANY|ALL), so a member issued
  -- after that cancel, when one before it ends (a hard chain's cancelled member, or one
  -- the cancel could not stop, as an fsync running in a kernel worker), is never
  -- cancelled: close waits its 2 s and leaves it to the kernel, which may run the rest of
  -- the chain after close returned, on whatever file its descriptor number names then (a
  -- write landed in the pipe that reused the number). Until close cancels again, only
  -- the first member of a chain may be a request that might never end.
  for i = 2, #plans do
    if not plans[i].sure then
      for _, p in ipairs(plans) do if p.unstart then p.unstart() end end
      return
    end
  end
  -- A chain of requests where a member may not be sure: a later one then may not be.
  local all_sure = true
  for _, p in ipairs(plans) do
    if not p.sure then all_sure = false end
    p.sure = all_sure
  end
  if R.drain_mode and not all_sure then
    for _, p in ipairs(plans) do if p.unstart then p.unstart() end end
    return
  end
  local reqs = {}
  local items = {}
  local chain = { hard = hard, reqs = reqs, ended = 0 }
  for i, p in ipairs(plans) do
    local req = { op = p.op, R = R, sure = p.sure, multishot = false, calls = 0, done = false,
                  release = p.release, plan = p, target_kind = p.target_kind, chain = chain,
                  index = i }
    local silent = hard and i < #plans and p.silent_ok and not plans[i + 1].is_lt and
                   has_feature.cqe_skip and chance(0.5)
    req.silent = silent
    local inner = p.check
    req.check = function(r, res, final, ...)
      chain.results = chain.results or {}
      chain.results[i] = res
      if silent then check(res < 0, "a CQE_SKIP_SUCCESS member completed with %d", res) end
      return inner(r, res, final, ...)
    end
    reqs[i] = req
    local cb = make_callback(req)
    local item = { p.op }
    local nargs = NARGS[p.op]
    for k = 1, nargs do item[k + 1] = p.args[k] end
    item[nargs + 2] = cb
    if silent then
      item[nargs + 3] = luring.sqe.CQE_SKIP_SUCCESS
      R.skip_used = true
    end
    items[i] = item
  end
  stats.chains = stats.chains + 1
  local call = caller("link", chance(0.5) and "method" or "module")
  local names_ = {}
  for i, p in ipairs(plans) do
    names_[i] = p.op .. (reqs[i].silent and "/silent" or "") .. "(" ..
                describe(p.args, NARGS[p.op]) .. ")" .. (p.note and (" " .. p.note) or "")
  end
  log("link{%s}%s", table.concat(names_, ", "), hard and " hard" or "")
  local ok, h1, h2, h3, h4, h5, h6, h7, h8 = pcall(call, ring, items, hard and "hard" or nil)
  collectgarbage("stop")  -- as in queue(): no finalizer until the chain is in the model
  local function done() collectgarbage("restart") end
  if too_long then
    check(not ok and (tostring(h1):find("cannot fit", 1, true) or
                      (R.closed and tostring(h1):find("closed ring", 1, true))),
          "a chain of %d on a %d-entry SQ: %s",
          #plans, R.sq, tostring(h1))
    for _, p in ipairs(plans) do if p.unstart then p.unstart() end end
    return done()
  end
  if not ok and R.closed and tostring(h1):find("closed ring", 1, true) then
    for _, p in ipairs(plans) do if p.unstart then p.unstart() end end
    return done()
  end
  if not ok then fail("link with valid requests raised: %s", tostring(h1)) end
  local hs = { h1, h2, h3, h4, h5, h6, h7, h8 }
  if h1 == nil then
    log("  -> nil (SQ full)")
    for _, p in ipairs(plans) do if p.unstart then p.unstart() end end
    return done()
  end
  log("  -> %s", table.concat(hs, " ", 1, #plans))
  for i, req in ipairs(reqs) do
    req.h = hs[i]
    check(math.type(req.h) == "integer", "link handle %d: %s", i, tostring(req.h))
    if req.silent then
      -- No CQE on success: it ends when the member after it does (or with its failure).
      chain.silent = (chain.silent or 0) + 1
    end
    all_reqs[req] = true
    R.out = R.out + 1
    if req.sure and not req.silent then R.sure = R.sure + 1 end
    note_blocker(req)
    if req.silent then req.sure = false end
    if plans[i].target_kind then targets[#targets + 1] = req end
  end
  -- Silent members before one whose callback runs, not ended yet, succeeded (their
  -- success posted nothing; the one after could only run once they had ended).
  for i, req in ipairs(reqs) do
    if i > 1 and reqs[i - 1].silent then
      local inner_check = req.check
      req.check = function(r, res, final, ...)
        for j = i - 1, 1, -1 do
          local sj = reqs[j]
          if not sj.silent then break end
          if not sj.done then
            sj.silent_done = true
            if sj.plan.silent_success then sj.plan.silent_success() end
            finish(sj)
          end
        end
        return inner_check(r, res, final, ...)
      end
    end
  end
  -- Before IORING_FEAT_LINKED_FILE (5.18) the kernel looks up each member's file as the
  -- chain is submitted: a member with none (an empty slot) fails there with -EBADF, and
  -- every other member, before it or after, soft chain or hard, is cancelled without
  -- running (seen on 5.10, seed 86554832011: a timeout ahead of it ended -ECANCELED).
  local fails_at_submit = false
  if not has_feature.linked_file then
    for _, p in ipairs(plans) do if p.no_file then fails_at_submit = true end end
  end
  -- Soft chains: after a member failed, the ones after it are cancelled.
  chain.check_end = function()
    if not chain.results then return end
    if fails_at_submit then
      for i, p in ipairs(plans) do
        local res = chain.results[i]
        if res ~= nil then
          local want = p.no_file and -E.EBADF or -E.ECANCELED
          check(res == want, "chain failing at submission (no file, before LINKED_FILE): " ..
                "member %d (%s): %d, expected %d", i, p.op, res, want)
        end
      end
      return
    end
    if hard then return end
    local failed = false
    for i, p in ipairs(plans) do
      local res = chain.results[i]
      if not p.is_lt and res ~= nil then
        if failed then
          check(res == -E.ECANCELED, "soft chain: member %d (%s) ran after a failure: %d", i,
                p.op, res)
        elseif res < 0 then
          failed = true
        end
      end
    end
  end
  done()
end

-- ---- Bad arguments ---------------------------------------------------------------------------

-- Per op, the kinds of its arguments (before the callback), for calls with one wrong.
local arg_kinds = {
  write = { "fd", "data", "offset" }, read = { "fd", "size", "offset" },
  recv = { "fd", "size", "msgflags" }, send = { "fd", "data", "msgflags" },
  recv_multishot = { "fd", "msgflags" },
  readv = { "fd", "sizes", "offset" }, writev = { "fd", "strings", "offset" },
  openat = { "path", "openmode", "perm" }, close_fd = { "fd" },
  statx = { "pathfd", "statxflags" }, fsync = { "fd", "bool" },
  fallocate = { "fd", "fallocmode", "length0", "length1" }, ftruncate = { "fd", "length0" },
  unlinkat = { "path", "bool" }, renameat = { "path", "path", "renameflags" },
  mkdirat = { "path", "perm" }, symlinkat = { "path", "path" },
  linkat = { "path", "path", "linkflags" },
  splice = { "fd", "offset", "fd", "offset", "size", "spliceflags" },
  tee = { "fd", "fd", "size", "spliceflags" },
  accept = { "fd", "msgflags" }, multishot_accept = { "fd", "msgflags" },
  socket = { "family", "socktype", "proto" }, connect = { "sockfd", "host", "port" },
  bind = { "sockfd", "host", "port" }, listen = { "fd", "backlog" },
  shutdown = { "fd", "how" }, sendmsg = { "fd", "data", "peer", "msgflags" },
  recvmsg = { "fd", "size", "msgflags" }, send_zc = { "fd", "data", "msgflags" },
  timeout = { "seconds", "count", "tmode" }, timeout_remove = { "handle" },
  link_timeout = { "seconds" }, poll_add = { "fd", "events" }, poll_multishot = { "fd", "events" },
  poll_remove = { "handle" }, cancel = { "handle" }, cancel_fd = { "fd" }, cancel_all = {},
  nop = {},
  read_fixed = { "fd", "fixedbuf", "offset", "fixedlen", "fixedat" },
  write_fixed = { "fd", "fixedbuf", "offset", "fixedlen", "fixedat" },
  register_files = { "fdlist" }, register_buffers = { "buflist" }, unregister_files = {},
  unregister_buffers = {},
}
-- Not ops: no callback, no sqe flags (extra arguments are ignored).
local not_ops = { register_files = true, register_buffers = true, unregister_files = true,
                  unregister_buffers = true }
-- Ops whose descriptor a registered file cannot stand in for (the README's list).
local no_handle = { close_fd = true, listen = true, ftruncate = true, cancel_fd = true,
                    splice = true, tee = true, connect = true, bind = true }
local optional = { offset = false, msgflags = true, perm = true, statxflags = true, bool = true,
                   renameflags = true, linkflags = true, spliceflags = true, proto = true,
                   backlog = true, how = true, peer = true, count = true, tmode = true,
                   openmode = true, fallocmode = true, fixedlen = true, fixedat = true }

-- A harmless valid value of each kind (the other arguments of a bad call).
local function harmless(kind)
  if kind == "fd" then return devnull end
  if kind == "sockfd" then return spare_sock end
  if kind == "pathfd" then return scratch .. "/zz-none" end
  if kind == "path" then return scratch .. "/zz-none" end
  if kind == "data" then return "x" end
  if kind == "size" then return 1 end
  if kind == "offset" then return 0 end
  if kind == "sizes" then return { 1 } end
  if kind == "strings" then return { "x" } end
  if kind == "seconds" then return 0.001 end
  if kind == "handle" then return 1 end
  if kind == "events" then return "r" end
  if kind == "family" then return "unix" end
  if kind == "socktype" then return "stream" end
  if kind == "host" then return "127.0.0.1" end
  if kind == "port" then return 9 end
  if kind == "length0" then return 0 end
  if kind == "length1" then return 1 end
  if kind == "fixedbuf" then
    -- One of the ring's registered buffers (none: the call raises for it as well).
    local e = R.bufs and R.bufs.list[1]
    return e and e.ref[1]
  end
  if kind == "fdlist" then return { devnull } end
  if kind == "buflist" then return { luring.buffer(16) } end
  return nil  -- the optional ones
end

local meta_mode = nil  -- what the current chaos metamethod does
local function chaos_table(base)
  -- A table whose metamethods run Lua in the middle of the op's argument check.
  local mt = {}
  local function chaos()
    local m = meta_mode
    if m == "raise" then error("fuzz-meta-error", 0) end
    if m == "gc" then collectgarbage() end
    if m == "queue" and not R.closed then
      pcall(ring.nop, ring)
      R.cbless = R.cbless + 1
    end
    if m == "close" and not R.closed then
      log("  a metamethod closes ring %d", R.id)
      R.close_in_check = true
      ring:close()
      R.closed, R.retire_pending = true, true
    end
  end
  mt.__index = function(_, k) chaos(); return base[k] end
  mt.__len = function() chaos(); return #base end
  return setmetatable({}, mt)
end

-- Values of each kind that must raise.
local co_dead = coroutine.create(function() end)
local function bad_values(kind)
  local common = { {}, true, function() end, co_dead, io.stdout }
  local ints = { "abc", 1.5, 0 / 0, math.huge, -math.huge, 2 ^ 63, {}, true, io.stdout }
  local v = {}
  local function add(list) for _, x in ipairs(list) do v[#v + 1] = x end end
  if kind == "fd" or kind == "sockfd" then
    add(ints); add({ -1, 1 << 31, math.mininteger })
    -- Handles of a dropped registration and of other rings.
    if R.stale[1] then add({ pick(R.stale) }) end
    if foreign_handles[1] then add({ pick(foreign_handles), pick(foreign_handles) }) end
  end
  if kind == "fixedbuf" then
    add(common); add({ "abc", 1, luring.buffer(16) })  -- a buffer no ring registered
    if R.old_bufs and R.old_bufs[1] then add({ R.old_bufs[1] }) end  -- unregistered since
  end
  if kind == "fixedlen" then add(ints); add({ -1, 4097 }) end
  if kind == "fixedat" then add(ints); add({ 0, -1, 4097 }) end
  if kind == "fdlist" then
    add({ "x", 3, {}, { "x" }, { -2 }, { 1.5 }, { 1 << 31 }, { devnull, {} }, true })
  end
  if kind == "buflist" then
    add({ "x", 3, {}, { "bytes" }, { 1 }, { {} }, { luring.buffer(8), "x" }, true })
  end
  if kind == "size" then add(ints); add({ -1, 0x7ffff001, math.maxinteger }) end
  if kind == "offset" then add(ints); add({ -2, math.mininteger }) end
  if kind == "length0" then add(ints); add({ -1 }) end
  if kind == "length1" then add(ints); add({ 0, -5 }) end
  if kind == "msgflags" then add(ints); add({ -1, 1 << 31 }) end
  if kind == "count" then add(ints); add({ -1, 1 << 32 }) end
  if kind == "perm" then add(ints); add({ -1, 4096 }) end
  if kind == "statxflags" then add(ints); add({ 1 << 24, -1 }) end
  if kind == "renameflags" then add(ints); add({ 1 << 10, -1 }) end
  if kind == "linkflags" then add(ints); add({ 1, 0x100 }) end  -- only SYMLINK_FOLLOW (0x400)
  if kind == "spliceflags" then add(ints); add({ 0x100, -1 }) end
  if kind == "fallocmode" then add(ints); add({ 0x400, -1 }) end
  if kind == "proto" then add(ints); add({ -1 }) end
  if kind == "backlog" then add(ints); add({ -1 }) end
  if kind == "port" then add(ints); add({ -1, 65536 }) end
  if kind == "handle" then add(ints); add({ 0, -1 }) end
  if kind == "data" then add(common) end
  if kind == "path" then add(common); add({ "a\0b", string.rep("p", 4096) }) end
  if kind == "pathfd" then
    add({ {}, true, function() end, "a\0b", string.rep("p", 5000), -1, 1.5 })
  end
  if kind == "sizes" then
    add({ "x", 3, {}, { 1.5 }, { "x" }, { -1 }, { 0x7ffff000, 0x1000 }, true })
  end
  if kind == "strings" then add({ "x", 3, {}, { 1 }, { true }, { {} } }) end
  if kind == "openmode" then add({ "x", "rw", "rb+", "", 1 << 30, -1, {}, true }) end
  if kind == "bool" then add({ "yes", 1, 0, {} }) end
  if kind == "seconds" then add({ -1, "x", {}, true, 1e16, 0 / 0 }) end
  if kind == "tmode" then add({ "bogus", 1, {}, true }) end
  if kind == "events" then add({ "", "x", "rx", 0x10000, -1, {}, true }) end
  if kind == "family" then add({ "bogus", -1, {}, true, 1.5 }) end
  if kind == "socktype" then add({ "bogus", -1, {}, true }) end
  if kind == "host" then add({ "999.1.1.1", "::zz", "nope.invalid", {}, true }) end
  if kind == "how" then add({ "sideways", 3, -1, {}, true }) end
  if kind == "peer" then
    add({ "x", 3, true, { family = "bogus" },
          { family = "inet", address = "1.2.3.4", port = 70000 },
          { family = "inet", address = "nope", port = 1 }, { family = "unix" },
          { family = "inet", address = "1.2.3.4" } })
  end
  if not optional[kind] then v[#v + 1] = "<nil>" end
  return v
end

-- One call with one bad argument (or a bad callback, sqe flags or ring): it must raise,
-- and the message must name the function.
local op_names = {}
for name in pairs(arg_kinds) do op_names[#op_names + 1] = name end
table.sort(op_names)

local function bad_call()
  local name = pick(op_names)
  local kinds = arg_kinds[name]
  local n = #kinds
  local args = {}
  for i, k in ipairs(kinds) do args[i] = harmless(k) end
  local cb = function() end
  local flags = nil
  local which = not_ops[name] and rnd(0, n) or rnd(0, n + 2)
  local bad_ring = nil
  local desc
  if which >= 1 and which <= n then
    local vals = bad_values(kinds[which])
    local v = pick(vals)
    if v == "<nil>" then v = nil end
    args[which] = v
    desc = fmt("arg %d (%s) = %s", which, kinds[which], tostring(v))
    if no_handle[name] and (kinds[which] == "fd" or kinds[which] == "sockfd") and R.reg and
       chance(0.3) then
      -- A handle of the current registration, where the op cannot take one.
      args[which] = pick(R.reg.handles)
      desc = fmt("arg %d (%s) = %s", which, kinds[which], tostring(args[which]))
    end
  elseif which == n + 1 then
    cb = pick({ 1, "x", {}, true, io.stdout })
    desc = "callback " .. tostring(cb)
  elseif which == n + 2 then
    flags = pick({ -1, 1 << 20, luring.sqe.CQE_SKIP_SUCCESS, 4, "x", {} })
    desc = "sqe flags " .. tostring(flags)
  else
    bad_ring = pick({ "nil", "table", "closed", "file" })
    desc = "ring " .. bad_ring
  end
  if name == "link_timeout" and which ~= 0 then
    -- Outside a chain it always raises; check the chain form instead.
    name = "link"
  end
  stats.bad = stats.bad + 1
  local form = chance(0.5) and "method" or "module"
  local target = ring
  if bad_ring == "nil" then target = nil
  elseif bad_ring == "table" then target = {}
  elseif bad_ring == "file" then target = io.stdout
  elseif bad_ring == "closed" then
    target = luring.queue_init(1)
    target:close()
  end
  if bad_ring and form == "method" then
    if bad_ring ~= "closed" then form = "module" end
  end
  log("bad call %s(%s): %s", name, form, desc)
  local ok, res
  if name == "link" then
    local item = { "link_timeout", args[1], cb }
    if flags then item[4] = flags end
    local items = { { "nop", nil }, item }
    if bad_ring and form == "method" then form = "module" end
    ok, res = pcall(caller("link", form), target, items)
  else
    local a = { unpack(args, 1, n) }
    a[n + 1] = cb
    a[n + 2] = flags
    ok, res = pcall(caller(name, form), target, unpack(a, 1, n + 2))
  end
  if ok then
    -- Accepted: some of these are valid after all (a number where a string goes is
    -- converted...). Only a request that was queued matters: give it a place.
    if res ~= nil then
      fail("bad call %s with %s was accepted: handle %s", name, desc, tostring(res))
    end
    return
  end
  local msg = tostring(res)
  if not (msg:find("'" .. name .. "'", 1, true) or msg:find(name, 1, true)) then
    fail("bad call %s with %s: the error does not name the function: %s", name, desc, msg)
  end
end

-- A call whose table argument runs Lua in its metamethods while it is checked.
local function chaos_call()
  local choice = rnd(1, 4)
  meta_mode = pick({ "raise", "gc", "queue", "close", "none", "none" })
  local name, a, n
  if choice == 1 then
    name, a, n = "readv", { devnull, chaos_table({ 1, 2 }), 0 }, 3
  elseif choice == 2 then
    name, a, n = "writev", { devnull, chaos_table({ "ab", "c" }), 0 }, 3
  elseif choice == 3 then
    local s = free_stream(function(s) return s.kind == "unix" and not s.wbusy end)
    if not s then return end
    local peer = chaos_table({ family = "unix", path = "/nonexistent" })
    name, a, n = "sendmsg", { s.wfd, "x", peer, 0 }, 4
    s.wbusy = true
    a.release = function() s.wbusy = false end
  else
    name = "link"
  end
  log("chaos %s (metamethod: %s)", name, meta_mode)
  local ok, res
  local cb = function() end
  if name == "link" then
    local items = chaos_table({ { "nop", cb }, { "nop", nil } })
    ok, res = pcall(caller("link", "method"), ring, items)
  else
    a[n + 1] = cb
    ok, res = pcall(caller(name, "method"), ring, unpack(a, 1, n + 1))
  end
  meta_mode = nil
  if a and a.release then a.release() end
  if R.close_in_check then
    -- The ring went away while the op read its arguments: nothing may have been queued
    -- (a handle from a closed ring would never complete).
    R.close_in_check = nil
    log("  -> %s %s (ring closed during the check)", tostring(ok), tostring(res))
    -- (link raised "a chain of 2 requests cannot fit in a submission queue of 0 entries"
    -- before start.cpp checked the ring again after luaL_len: finding F2.)
    check(not ok and (tostring(res):find("closed ring", 1, true) or
                      tostring(res):find("cannot fit in a submission queue", 1, true)),
          "%s whose ring a metamethod closed during the check: %s %s", name, tostring(ok),
          tostring(res))
    return "closed", ok, res
  end
  if not ok then
    local msg = tostring(res)
    check(msg:find("fuzz-meta-error", 1, true) or msg:find(name, 1, true),
          "chaos %s: error %s", name, msg)
    return
  end
  if res ~= nil then
    -- A real request on /dev/null (or a refused sendmsg): it completes promptly; its
    -- callback is not checked beyond running at most once.
    log("  -> %s", tostring(res))
    R.cbless = R.cbless + 1
  end
end

-- ---- Registering and dropping files and buffers ----------------------------------------------

-- Runs `fn` (a register call) with the collector stopped where a finalizer's request could
-- change the answer: before IORING_FEAT_RSRC_TAGS (5.13) any request in flight makes it
-- -EBUSY, so the count taken for the model must be the one the call sees.
local function registering(fn)
  local stop = not has_feature.rsrc_tags
  if stop then collectgarbage("stop") end
  local res = pack(pcall(fn))
  if stop then collectgarbage("restart") end
  return unpack(res, 1, res.n)
end
-- What a register (dropping = false) or unregister call must answer when it is not
-- refused for another reason: -EBUSY if the kernel would wait, else nil.
local function busy_answer(dropping)
  if dropping and fixed_users() > 0 then return -E.EBUSY end
  if not has_feature.rsrc_tags and ring:in_flight() > 0 then return -E.EBUSY end
  return nil
end

-- A handle that must raise `why` in op calls on ring `r` (the current one or another).
local function misuse(r, h, why, rr)
  local choices = {
    { "read", { h, 1, 0 } }, { "write", { h, "x", 0 } }, { "recv", { h, 1, 0 } },
    { "send", { h, "x", 0 } }, { "fsync", { h, false } }, { "poll_add", { h, "r" } },
    { "readv", { h, { 1 }, 0 } }, { "recv_multishot", { h, 0 } },
    { "read_into", { h, luring.buffer(4), 0, nil, nil } },
  }
  if rr and rr.bufs and rr.bufs.list[1].ref[1] then
    choices[#choices + 1] = { "read_fixed", { h, rr.bufs.list[1].ref[1], 0, 1, nil } }
  end
  local c = pick(choices)
  local name, a = c[1], c[2]
  local ok, res
  if chance(0.2) and r == ring and R.sq >= 2 then
    name = "link"
    local item = { c[1] }
    for i = 1, NARGS[c[1]] do item[i + 1] = c[2][i] end
    ok, res = pcall(caller("link", "method"), r, { { "nop", nil }, item })
  else
    a[NARGS[name] + 1] = function() fail("a request on a bad handle was called back") end
    ok, res = pcall(caller(name, chance(0.5) and "method" or "module"), r,
                    unpack(a, 1, NARGS[name] + 1))
  end
  log("  %s with %s: %s", name, tostring(h), tostring(res))
  if R.closed and not ok and tostring(res):find("closed ring", 1, true) then return end
  -- link refuses an op this ring cannot chain (recv_multishot without provided buffers,
  -- before 5.19; an op done synchronously) before it looks at the handle.
  if name == "link" and not ok and tostring(res):find("cannot be linked on this", 1, true) then
    return
  end
  check(not ok and tostring(res):find(why, 1, true) and tostring(res):find(name, 1, true),
        "%s with a handle that must raise (%s): %s %s", name, why, tostring(ok), tostring(res))
end

local function register_files_step()
  -- Descriptors of the streams, files and /dev/null, some twice, empty slots (-1) and
  -- now and then one that is not open (-EBADF).
  local cand = { devnull }
  for _, s in ipairs(streams) do
    if not s.retired then cand[#cand + 1] = s.rfd; cand[#cand + 1] = s.wfd end
  end
  for _, f in ipairs(files) do cand[#cand + 1] = f.fd end
  local fds = {}
  for k = 1, rnd(1, 8) do fds[k] = chance(0.2) and -1 or pick(cand) end
  local bad = chance(0.04)
  if bad then fds[rnd(1, #fds)] = 1 << 30 end
  local call = caller("register_files", chance(0.5) and "method" or "module")
  log("register_files{%s}%s", table.concat(fds, ", "), R.reg and " (files registered)" or "")
  flush()
  local expect
  local ok, res = registering(function()
    if R.reg then expect = -E.EBUSY else expect = busy_answer(false) end
    if not expect and bad then expect = -E.EBADF end
    return call(ring, fds)
  end)
  if not ok then
    if R.closed and tostring(res):find("closed ring", 1, true) then
      log("  -> raised: the ring was closed by a finalizer")
      return
    end
    fail("register_files with valid descriptors raised: %s", tostring(res))
  end
  if expect then
    check(res == expect, "register_files: %s, expected %d", tostring(res), expect)
    log("  -> %d", res)
    return
  end
  check(type(res) == "table" and #res == #fds, "register_files: %s", tostring(res))
  log("  -> %d handles", #res)
  local reg = { handles = res, sr = {}, sw = {}, f = {} }
  for k, h in ipairs(res) do
    local fd = fds[k]
    check(h:index() == k - 1, "handle %d: index %s", k, tostring(h:index()))
    check(tostring(h):find(fmt("luring.FixedFile (index %d, fd %d)", k - 1, fd), 1, true),
          "tostring of handle %d: %s", k, tostring(h))
    if fd >= 0 then
      handle_fd[h] = fd
      for _, s in ipairs(streams) do
        if not s.retired then
          if s.rfd == fd then reg.sr[s] = h end
          if s.wfd == fd then reg.sw[s] = h end
        end
      end
      for _, f in ipairs(files) do if f.fd == fd then reg.f[f] = h end end
      if fd == devnull then reg.null = h end
    else
      reg.empty = h
    end
  end
  R.reg = reg
end

local function register_buffers_step()
  if fixed_bufs_refused or not kernel_has.read_fixed or not kernel_has.write_fixed then return end
  local bufs = {}
  for k = 1, rnd(1, 4) do bufs[k] = luring.buffer(chance(0.3) and rnd(1, 64) or rnd(1, 4096)) end
  local call = caller("register_buffers", chance(0.5) and "method" or "module")
  local sizes = {}
  for k, b in ipairs(bufs) do sizes[k] = #b end
  log("register_buffers{%s}%s", table.concat(sizes, ", "), R.bufs and " (buffers registered)" or "")
  flush()
  local expect
  local ok, res = registering(function()
    if R.bufs then expect = -E.EBUSY else expect = busy_answer(false) end
    return call(ring, bufs)
  end)
  if not ok then
    if R.closed and tostring(res):find("closed ring", 1, true) then
      log("  -> raised: the ring was closed by a finalizer")
      return
    end
    fail("register_buffers with valid buffers raised: %s", tostring(res))
  end
  log("  -> %s", tostring(res))
  if not expect and res == -E.ENOMEM then
    -- RLIMIT_MEMLOCK: this episode goes on without registered buffers.
    fixed_bufs_refused = true
    return
  end
  check(res == (expect or 0), "register_buffers: %s, expected %d", tostring(res), expect or 0)
  if res ~= 0 then return end
  -- Half the time only the ring holds them from now on.
  local weak = chance(0.5)
  local list = {}
  for k, b in ipairs(bufs) do
    list[k] = { ref = setmetatable({ b }, { __mode = "v" }), strong = not weak and b or nil,
                size = #b, index = k - 1, busy = false }
  end
  R.bufs = { list = list, weak = weak }
  if weak then log("  (held by the ring alone)") end
end

local function unregister_step(what)
  local name = "unregister_" .. what
  local call = caller(name, chance(0.5) and "method" or "module")
  local expect
  local users = fixed_users()
  log("%s (%d in flight use registrations, %d in flight)", name, users, ring:in_flight())
  flush()
  local ok, res = registering(function()
    if not (what == "files" and R.reg or what == "buffers" and R.bufs) then
      expect = -E.ENXIO
    else
      expect = busy_answer(true) or 0
    end
    return call(ring)
  end)
  if not ok and R.closed and tostring(res):find("closed ring", 1, true) then
    log("  -> raised: the ring was closed by a finalizer")
    return
  end
  check(ok, "%s raised: %s", name, tostring(res))
  check(res == expect, "%s: %s, expected %d (%d requests in flight use registrations, %d in " ..
        "flight)", name, tostring(res), expect, fixed_users(), ring:in_flight())
  log("  -> %d", res)
  if res ~= 0 then return end
  if what == "files" then
    for _, h in ipairs(R.reg.handles) do R.stale[#R.stale + 1] = h end
    while #R.stale > 16 do table.remove(R.stale, 1) end
    R.reg = nil
    misuse(ring, pick(R.stale), "stale registered file", R)
  else
    local old = setmetatable({}, { __mode = "v" })
    for _, e in ipairs(R.bufs.list) do old[#old + 1] = e.ref[1] end
    R.bufs, R.old_bufs = nil, old
    local b = old[1]
    if b then
      local ok2, err = pcall(caller("read_fixed", chance(0.5) and "method" or "module"), ring,
                             devnull, b, 0, 1, nil)
      check(not ok2 and tostring(err):find("not a registered buffer", 1, true) and
            tostring(err):find("read_fixed", 1, true), "read_fixed on a buffer unregistered: %s",
            tostring(err))
    end
  end
end

-- A ring of its own with a registered file: its handle raises here, ours there.
local function other_ring_step()
  local other = luring.queue_init(2)
  local h = other:register_files({ devnull })
  check(type(h) == "table", "register_files on another ring: %s", tostring(h))
  log("other ring with a registered file")
  misuse(ring, h[1], "registered file of another ring", R)
  if R.reg then misuse(other, pick(R.reg.handles), "registered file of another ring") end
  other:close()
  add_foreign(h[1])
end

local function fixed_step()
  if R.closed then return end
  stats.fixed = stats.fixed + 1
  local r = rnd()
  -- (Mostly the call that changes something; now and then the one that must refuse.)
  if r < 0.40 then
    if R.reg and chance(0.6) then unregister_step("files") else register_files_step() end
  elseif r < 0.72 then
    if R.bufs and chance(0.6) then unregister_step("buffers") else register_buffers_step() end
  elseif r < 0.85 then
    local h = R.stale[1] and pick(R.stale)
    if h then misuse(ring, h, "stale registered file", R) end
    if foreign_handles[1] then
      misuse(ring, pick(foreign_handles), "registered file of another ring", R)
    end
  elseif r < 0.93 then
    -- Registered buffers only the ring holds survive a full collection.
    if not R.bufs then return end
    log("collectgarbage with registered buffers%s", R.bufs.weak and " held by the ring alone" or "")
    collectgarbage()
    collectgarbage()
    if R.closed or not R.bufs then return end  -- a finalizer closed it: they may go
    for _, e in ipairs(R.bufs.list) do
      check(e.ref[1] ~= nil, "ring %d: registered buffer %d was collected", R.id, e.index)
    end
  else
    other_ring_step()
  end
end

-- ---- What callbacks do -------------------------------------------------------------------

local close_ring   -- forward
local pick_gen     -- forward

local quiet = false  -- the drain and the end checks: callbacks only check
function behave(req, cqe, final)
  if quiet or R ~= req.R or R.closed then return end  -- an old ring's: nothing more
  if depth > 3 then return end
  local r = rnd()
  if r < 0.55 then return end
  -- A coroutine that will be resumed again must stay alive and must not be resumed while
  -- it runs (a nested dispatch could bring its next completion).
  local co_live = req.coroutine and not final
  if co_live and (r < 0.66 or (r >= 0.85 and r < 0.87)) then return end
  if r < 0.60 then
    raise_from_callback(req)
  elseif r < 0.66 then
    log("  callback: nested do_cqes")
    dispatching("nested do_cqes", ring.do_cqes, ring)
  elseif r < 0.78 then
    for _ = 1, rnd(1, 3) do
      if R.closed then break end
      local p = pick_gen()
      if p then queue(p) end
    end
  elseif r < 0.82 then
    local ret = ring:submit()
    log("  callback: submit -> %s", tostring(ret))
    check(math.type(ret) == "integer", "submit: %s", tostring(ret))
  elseif r < 0.85 then
    -- A request that surely completes, then a wait for one completion.
    local q = queue(gen_by_name.nop.fn())
    if q then
      log("  callback: submit_and_wait(1)")
      flush()
      local ret = ring:submit_and_wait(1)
      check(ret >= 0 or ret == -E.EINTR or ret == -E.EBUSY or ret == -E.EAGAIN,
            "submit_and_wait in a callback: %d", ret)
    end
  elseif r < 0.87 then
    log("  callback: run_once(0)")
    dispatching("nested run_once", ring.run_once, ring, 0)
  elseif r < 0.90 then
    collectgarbage(chance(0.5) and "collect" or "step")
  elseif r < 0.915 then
    close_ring("in a callback")
  elseif r < 0.95 then
    luring.cqe_seen(ring, cqe)
    if chance(0.5) then ring:cqe_seen(cqe) end
    stale_cqe = cqe
  elseif r < 0.97 then
    chaos_call()
  elseif r < 0.98 then
    fixed_step()
  else
    if stale_cqe and stale_cqe ~= cqe then
      local ok, err = pcall(luring.cqe_seen, ring, stale_cqe)
      check(not ok and tostring(err):find("cqe", 1, true), "a stale cqe was accepted: %s",
            tostring(err))
    end
  end
end

-- ---- Ring close, drain, end checks ------------------------------------------------------------

-- Streams, files and names a closed ring's requests were using: their state is unknown
-- now (a write may have landed in part), so streams are replaced, files and names read
-- back from the system.
local function retire_stream(s)
  if s.retired then return end
  s.retired = true
  unpin_all(s)
  if s.pair then unpin_all(s.pair) end
  local fds = { s.rfd, s.wfd }
  if s.pair then
    s.pair.retired = true
  end
  log("  stream %d retired", s.id)
  if s.kind == "tcp" then
    for _, fd in ipairs(fds) do
      if owned[fd] then disown_close(fd) end
    end
  else
    for _, fd in ipairs(fds) do
      if s.pair == nil or fd == s.rfd or fd == s.wfd then
        testlib.close(fd)
      end
    end
  end
  for _, fd in ipairs(fds) do fdbusy[fd] = nil end
  if s.pair then
    for _, fd in ipairs({ s.pair.rfd, s.pair.wfd }) do fdbusy[fd] = nil end
  end
  if s.kind == "pipe" then new_pipe() elseif s.kind == "unix" then new_socketpair() end
end

local function sync_type(path)
  local r = luring.queue_init(2)
  local ty, id
  r:statx(path, luring.at.SYMLINK_NOFOLLOW, function(_, res, st)
    if res == 0 then ty, id = st.type, "i" .. st.ino end
  end)
  r:run(5)
  r:close()
  return ty, id
end

local abandoned_closes = {}
local function after_close(oldR)
  oldR.closed = true
  -- Requests without callbacks (or in a chain with no end seen) and those in flight:
  -- never called back now.
  local affected_streams, affected_files = {}, {}
  local n_abandoned = 0
  for req in pairs(all_reqs) do if req.R == oldR then n_abandoned = n_abandoned + 1 end end
  log("ring %d closed: %d requests with callbacks never called back", oldR.id, n_abandoned)
  abandoned_closes = {}
  for req in pairs(all_reqs) do
    if req.R == oldR then
      all_reqs[req] = nil
      req.abandoned = true
      if req.closing_fd then abandoned_closes[req] = true end
      local p = req.plan
      if p and p.args then
        for _, v in ipairs(p.args) do
          v = handle_fd[v] or v  -- a registered file: the descriptor it was registered from
          if math.type(v) == "integer" then
            for _, s in ipairs(streams) do
              if s.rfd == v or s.wfd == v then affected_streams[s] = true end
            end
            for _, f in ipairs(files) do if f.fd == v then affected_files[f] = true end end
            if owned[v] and owned[v].connecting then owned[v].connecting = false end
          end
        end
        if p.op == "openat" or p.op == "mkdirat" or p.op == "unlinkat" or p.op == "renameat" or
           p.op == "symlinkat" or p.op == "linkat" or p.op == "statx" then
          affected_files.names = true
        end
      end
    end
  end
  for _, req in ipairs(oldR.cbless_list or {}) do
    local p = req.plan
    for _, v in ipairs(p and p.args or {}) do
      if math.type(v) == "integer" then
        for _, s in ipairs(streams) do
          if s.rfd == v or s.wfd == v then affected_streams[s] = true end
        end
        for _, f in ipairs(files) do if f.fd == v then affected_files[f] = true end end
      end
    end
  end
  -- close_fd requests that never reported: if the number still names the same file,
  -- the close did not run.
  for req in pairs(abandoned_closes) do
    local fd = req.closing_fd
    if closing[fd] then
      if not owned[fd] and fd_identity(fd) == closing[fd] then
        log("  %d: its close_fd did not run; closed now", fd)
        luring.close_fd_now(fd)
      end
      closing[fd] = nil
    end
  end
  for s in pairs(affected_streams) do retire_stream(s) end
  -- Its registered files' handles are another ring's now.
  for _, h in ipairs(oldR.stale) do add_foreign(h) end
  if oldR.reg then
    for _, h in ipairs(oldR.reg.handles) do add_foreign(h) end
  end
  oldR.stale = {}
  oldR.reg, oldR.bufs = nil, nil
  for _, f in ipairs(files) do
    if affected_files[f] or f.writer or f.readers > 0 then
      file_resync(f)
      f.writer, f.readers = false, 0
    end
  end
  if affected_files.names then
    for _, n in ipairs(names) do ns[n], nsid[n] = sync_type(spath(n)) end
    log("  names read back: a=%s b=%s c=%s d=%s", tostring(ns.a), tostring(ns.b),
        tostring(ns.c), tostring(ns.d))
  end
  nsbusy = {}
  -- Unpaired TCP sides whose partner will never come: close them.
  for port, fd in pairs(accepted_by_port) do
    if owned[fd] then disown_close(fd) end
    accepted_by_port[port] = nil
  end
  -- (Clients whose connect ended stay: their server side waits in the backlog for the
  -- next accept, on the next ring.) Clients whose connect was in flight: closed.
  for fd, o in pairs(owned) do
    if o.connecting then
      local t = luring.getsockname(fd)
      if t and t.port and t.port ~= 0 then stale_ports[t.port] = true end
      disown_close(fd)
    end
  end
  for fd in pairs(fdbusy) do fdbusy[fd] = nil end
  -- Streams with a write in flight: already retired. The rest are clean.
  for _, s in ipairs(streams) do
    if not s.retired then s.wbusy, s.rbusy = false, false end
  end
  targets = {}
end

function close_ring(where)
  local oldR = R
  if oldR.closed then return end
  local how = rnd()
  stats.closes = stats.closes + 1
  local regs = (oldR.reg and ", files registered" or "") ..
               (oldR.bufs and ", buffers registered" or "")
  if how < 0.7 or depth > 0 then
    log("ring %d: close %s with %d in flight%s", oldR.id, where, ring:in_flight(), regs)
    flush()
    local t0 = now()
    if chance(0.5) then ring:close() else luring.queue_exit(ring) end
    if depth == 0 then
      local took = now() - t0
      log("  closed in %.3f s", took)
      -- 2 s is close's drain timeout: it could not cancel what was in flight and left
      -- the slots to the kernel (findings F3 and F6 of issue 12).
      if took > 1.5 then stats.slowcloses = stats.slowcloses + 1 end
    end
    check(tostring(ring):find("closed", 1, true), "tostring after close: %s", tostring(ring))
    ring:close()  -- idempotent
    local ok, err = pcall(function() return ring:nop() end)
    check(not ok and tostring(err):find("closed ring", 1, true) and
          tostring(err):find("nop", 1, true),
          "nop on a closed ring: %s", tostring(err))
    if depth == 0 then
      after_close(oldR)
    else
      -- Inside a callback the ring closes when the outermost dispatch unwinds: its
      -- requests are reaped then, so what they use is retired only after that.
      oldR.closed = true
      oldR.retire_pending = true
    end
  else
    -- Dropped: the collector closes it.
    log("ring %d: dropped %s with %d in flight%s, collected", oldR.id, where, ring:in_flight(),
        regs)
    flush()
    local weak = setmetatable({ ring }, { __mode = "v" })
    oldR.ring = nil
    ring = nil
    R = nil
    oldR.closed = true
    local t0 = now()
    collectgarbage()
    collectgarbage()
    if weak[1] then
      log("  (still referenced somewhere; closed explicitly)")
      weak[1]:close()
    end
    log("  collected in %.3f s", now() - t0)
    -- Only now, with its requests reaped, may what they used be closed and reused.
    after_close(oldR)
  end
  if depth == 0 then open_ring() else R = oldR; ring = oldR.ring end
end

-- Ends everything in flight: cancels what might never complete, then runs until done.
local function drain()
  if R.closed then return end
  local deadline = now() + 10
  local rounds = 0
  while true do
    rounds = rounds + 1
    -- Only the fuzzer's own callbacks: nothing else raises or closes now.
    local pending = {}
    for req in pairs(all_reqs) do
      if req.R == R and not req.done and not req.silent then pending[#pending + 1] = req end
    end
    table.sort(pending, function(a, b) return a.h < b.h end)
    if #pending == 0 and ring:in_flight() == 0 then break end
    for _, req in ipairs(pending) do
      local h = nil
      while not h do
        h = ring:cancel(req.h)
        if not h then
          dispatching("drain submit", function()
            ring:submit()
            return ring:run_once(0.01)
          end)
        end
        if R.closed then return end
      end
    end
    local left = dispatching("drain run", ring.run, ring, 0.2)
    if R.closed then return end
    if left == 0 and next(all_reqs) == nil then break end
    if now() > deadline then
      local list = {}
      for req in pairs(all_reqs) do
        if req.R == R then list[#list + 1] = fmt("%s#%d", req.op, req.h) end
      end
      fail("drain: after 10 s still in flight: %d (ring says %d): %s", #list, ring:in_flight(),
           table.concat(list, " "))
    end
  end
  check(ring:in_flight() == 0, "in_flight() is %d after everything ended", ring:in_flight())
  for req in pairs(all_reqs) do
    if req.R == R then
      fail("%s#%d never called back, though the ring says nothing is in flight", req.op, req.h)
    end
  end
  -- Chains: soft-chain semantics, once all members ended.
  R.cbless, R.cbless_list = 0, nil
  log("ring %d drained in %d rounds", R.id, rounds)
end

-- testlib.read/write, waiting out EAGAIN: a side accepted with SOCK_NONBLOCK is
-- non-blocking, and on loopback TCP the bytes written arrive a moment later.
local function sync_io(fn, fd, arg)
  local deadline = now() + 5
  while true do
    local v, err, code = fn(fd, arg)
    if v or code ~= E.EAGAIN or now() > deadline then return v, err end
    local r = luring.queue_init(1)
    r:timeout(0.001, nil, nil, function() end)
    r:run(1)
    r:close()
  end
end

-- Streams hold exactly what the model says: what is left, then a marker written now.
local function check_streams()
  for _, s in ipairs(streams) do
    if not s.retired and not s.shut then
      check(not s.wbusy and not s.rbusy, "stream %d busy after the drain", s.id)
      log("check stream %d (%s, %d -> %d): %d bytes", s.id, s.kind, s.wfd, s.rfd, #s.buf)
      flush()
      local marker = fmt("|end-%d-%d|", s.id, seq)
      local want = s.buf .. marker
      local got = {}
      local have = 0
      -- What the model says is there first (the buffer may be full), then a marker
      -- written now: a byte more or less than the model shows up as a mismatch.
      while have < #s.buf do
        local piece, err = sync_io(testlib.read, s.rfd, #s.buf - have)
        check(piece and #piece > 0, "stream %d: end of stream after %d of %d bytes (%s)", s.id,
              have, #s.buf, tostring(err))
        got[#got + 1] = piece
        have = have + #piece
      end
      local w = 0
      while w < #marker do
        local n, err = sync_io(testlib.write, s.wfd, marker:sub(w + 1))
        check(n and n > 0, "stream %d (%s, fds %d -> %d): marker write: %s", s.id, s.kind, s.wfd,
              s.rfd, tostring(err))
        w = w + n
      end
      while have < #want do
        local piece, err = sync_io(testlib.read, s.rfd, #want - have)
        check(piece and #piece > 0, "stream %d: end of stream before the marker (%d of %d " ..
              "bytes; %s)", s.id, have, #want, tostring(err))
        got[#got + 1] = piece
        have = have + #piece
      end
      local all = table.concat(got)
      if all ~= want then
        local i = 1
        while i <= #all and all:byte(i) == want:byte(i) do i = i + 1 end
        fail("stream %d (%s): holds other bytes than the model after the drain (%d bytes), " ..
             "from byte %d: got %q, expected %q", s.id, s.kind, #want, i,
             all:sub(math.max(1, i - 20), i + 40), want:sub(math.max(1, i - 20), i + 40))
      end
      s.buf = ""
      unpin_all(s)
    end
  end
  -- Files: the content on disk.
  for _, f in ipairs(files) do
    local h = assert(io.open(f.path, "rb"))
    local c = h:read("a")
    h:close()
    if c ~= f.content then
      local i = 1
      while i <= #c and c:byte(i) == f.content:byte(i) do i = i + 1 end
      fail("file %s: %d bytes on disk, the model has %d; first difference at %d", f.path, #c,
           #f.content, i)
    end
  end
  for _, n in ipairs(names) do
    local ty = sync_type(spath(n))
    check(ty == ns[n], "scratch name %s is %s on disk, the model says %s", n, tostring(ty),
          tostring(ns[n]))
  end
end

-- ---- The raw phase -----------------------------------------------------------------------------

local total_weight = 0
for _, g in ipairs(gens) do total_weight = total_weight + g.weight end
function pick_gen()
  for _ = 1, 5 do
    local x = rnd() * total_weight
    for _, g in ipairs(gens) do
      x = x - g.weight
      if x <= 0 then
        local p = g.fn()
        if p then return p end
        break
      end
    end
  end
  return nil
end

-- Garbage with finalizers that use the ring (a GC step can run them anywhere, also while
-- an op checks its arguments or while callback arguments are pushed).
local function finalizer_garbage()
  local myR = R
  local what = pick({ "nop", "nop", "submit", "close", "raise" })
  if what == "close" and chance(0.7) then what = "nop" end
  setmetatable({}, { __gc = function()
    if myR.closed or myR ~= R then return end
    if what == "nop" then
      pcall(myR.ring.nop, myR.ring)  -- no callback: nothing to check but that it is safe
      myR.cbless = myR.cbless + 1
    elseif what == "submit" then
      pcall(myR.ring.submit, myR.ring)
    elseif what == "close" then
      -- Closing from a finalizer: what its requests used is retired at the next step.
      log("  a finalizer closes ring %d", myR.id)
      pcall(myR.ring.close, myR.ring)
      myR.closed, myR.retire_pending = true, true
    else
      error("fuzz-finalizer-error")
    end
  end })
end

-- After a ring closed (from a finalizer, a metamethod, a callback): retire what its
-- requests used, then open the next. A finalizer can run at any allocation, this loop's
-- included, so it goes round until the current ring is open and settled.
local function settle()
  -- No finalizer may run in here: one that closed the ring between two of these tests
  -- would go unseen (they run at the next allocation after this).
  collectgarbage("stop")
  while true do
    if R and R.retire_pending then
      R.retire_pending = nil
      after_close(R)
    elseif R and not R.closed and tostring(ring):find("(closed)", 1, true) then
      log("ring %d: found closed", R.id)
      after_close(R)
    elseif R == nil or R.closed then
      open_ring()
    else
      break
    end
  end
  collectgarbage("restart")
end

local step_body
local function step()
  local ok, err = pcall(step_body)
  if not ok then
    if not (R.closed and tostring(err):find("closed ring", 1, true)) then error(err, 0) end
    log("  the ring was closed by a finalizer: %s", tostring(err))
  end
  settle()
end

function step_body()
  if chance(0.04) then return fixed_step() end
  local r = rnd()
  if r < 0.45 then
    local p = pick_gen()
    if p then
      -- Now and then without a callback (only what surely ends and reserves nothing).
      local cbless = p.sure and chance(0.03) and not p.target_kind and p.op ~= "openat" and
                     not p.started and not p.release and not p.fixed
      queue(p, { cbless = cbless or nil })
    end
  elseif r < 0.47 then
    -- Requests without a callback: a nop, a short timeout, an openat (the module must
    -- close the descriptor nobody receives: the fd count at the end checks it).
    local p
    local k = rnd(1, 3)
    if k == 1 then
      p = gen_by_name.nop.fn()
    elseif k == 2 then
      p = { op = "timeout", args = { rnd() * 0.005, nil, nil }, nargs = 3, sure = true }
    else
      p = { op = "openat", args = { pick(files).path, "r", nil }, nargs = 3, sure = true }
    end
    queue(p, { cbless = true })
  elseif r < 0.53 then
    do_chain()
  elseif r < 0.61 then
    bad_call()
  elseif r < 0.63 then
    chaos_call()
  elseif r < 0.68 then
    flush()
    local ret = ring:submit()
    log("submit -> %s", tostring(ret))
    check(math.type(ret) == "integer" and (ret >= 0 or ret == -E.EBUSY or ret == -E.EAGAIN),
          "submit: %s", tostring(ret))
  elseif r < 0.74 then
    local sure = sure_count(R)
    local n = sure > 0 and rnd(0, math.min(sure, 4)) or 0
    log("submit_and_wait(%d) (%d sure of %d, %d blocking)", n, R.sure, R.out, R.blockers)
    -- What the wait counts on: if it hangs, the trace says which request did not end.
    local list = {}
    for q in pairs(all_reqs) do
      if q.R == R and q.sure then list[#list + 1] = q.op .. "#" .. q.h end
    end
    table.sort(list)
    log("    sure: %s", table.concat(list, " "))
    stats.waits = stats.waits + 1
    flush()
    local ret = ring:submit_and_wait(n)
    check(ret >= 0 or ret == -E.EINTR or ret == -E.EBUSY or ret == -E.EAGAIN,
          "submit_and_wait: %d", ret)
  elseif r < 0.77 then
    local n = rnd(0, 3)
    local t = chance(0.5) and rnd() * 0.01 or nil
    if not t and n > sure_count(R) then n = sure_count(R) end
    log("wait(%d, %s)", n, tostring(t))
    flush()
    local ret = ring:wait(n, t)
    check(math.type(ret) == "integer" and (ret >= 0 or ret == -E.ETIME or ret == -E.EINTR or
          ret == -E.EBUSY or ret == -E.EAGAIN), "wait: %s", tostring(ret))
  elseif r < 0.87 then
    log("do_cqes")
    local n = dispatching("do_cqes", ring.do_cqes, ring)
    check(n == nil or math.type(n) == "integer", "do_cqes returned %s", tostring(n))
  elseif r < 0.91 then
    local t = chance(0.8) and rnd() * 0.005 or nil
    if t == nil and sure_count(R) == 0 then t = 0 end
    log("run_once(%s)", tostring(t))
    local a, b = dispatching("run_once", ring.run_once, ring, t)
    if a then check(math.type(a) == "integer" and math.type(b) == "integer", "run_once results") end
  elseif r < 0.93 then
    local t = rnd() * 0.01
    log("run(%g)", t)
    local left = dispatching("run", ring.run, ring, t)
    if left then
      check(math.type(left) == "integer" and left >= 0, "run returned %s", tostring(left))
    end
  elseif r < 0.945 then
    collectgarbage(chance(0.5) and "collect" or "step")
  elseif r < 0.96 then
    finalizer_garbage()
  elseif r < 0.965 then
    close_ring("at top level")
  elseif r < 0.975 then
    -- in_flight(): at least the requests with callbacks still out.
    local n = ring:in_flight()
    check(math.type(n) == "integer" and n >= 0, "in_flight %s", tostring(n))
    if R.cbless == 0 then
      check(n == R.out, "in_flight() is %d, the model has %d requests out", n, R.out)
    end
  elseif r < 0.985 then
    -- Close a TCP pair with nothing in flight.
    for _, s in ipairs(streams) do
      if s.kind == "tcp" and not s.retired and not s.wbusy and not s.rbusy and not s.pair.wbusy and
         not s.pair.rbusy and not fdbusy[s.rfd] and not fdbusy[s.wfd] then
        log("tcp close %d/%d", s.rfd, s.wfd)
        s.retired, s.pair.retired = true, true
        disown_close(s.rfd)
        disown_close(s.wfd)
        break
      end
    end
  else
    -- Synchronous helpers.
    local fd = pick({ listen_fd, spare_sock, devnull })
    local t = luring.getsockname(fd)
    check(fd == devnull and t == nil or type(t) == "table", "getsockname(%d)", fd)
    check(type(luring.strerror(-E.ENOENT)) == "string", "strerror")
    local v = luring.getsockopt(listen_fd, "reuseaddr")
    check(v == true, "getsockopt reuseaddr: %s", tostring(v))
  end
end

local function raw_phase(steps)
  open_ring()
  for i = 1, steps do
    step()
    if i % 50 == 0 then flush() end
  end
  settle()
  quiet = true
  -- Finalizers still pending (some close the ring) run now, not in the drain.
  collectgarbage()
  collectgarbage()
  settle()
  log("drain ring %d (%d out, %d sure)", R.id, R.out, R.sure)
  flush()
  drain()
  if R.closed then
    -- A callback of the drain closed it (cannot: drain's callbacks do nothing more).
    fail("the ring closed during the drain")
  end
  check_streams()
  -- Nothing in flight: dropping the registrations must work (or they stay for the close).
  if R.reg and chance(0.5) then unregister_step("files") end
  if R.bufs and chance(0.5) then unregister_step("buffers") end
  ring:close()
  after_close(R)
  R, ring = nil, nil
  quiet = false
end

-- ==== The async phase =========================================================================

local async = require "luring.async"

local function async_phase(steps)
  local entries = rnd(1, 8)
  local fs = pick({ flag_sets[1], flag_sets[1], flag_sets[2], flag_sets[3], flag_sets[4] })
  -- Flags this kernel refuses (5.10 has no COOP_TASKRUN, 5.19, nor DEFER_TASKRUN, 6.1):
  -- async.run raises as queue_init does; the tasks then run on a plain ring, as the raw
  -- phase's rings do.
  if fs[1] ~= 0 then
    local ok, r = pcall(luring.queue_init, entries, { flags = fs[1] })
    if ok then
      r:close()
    else
      log("queue_init(%d, %s) refused: %s; plain ring", entries, fs[2], tostring(r))
      fs = flag_sets[1]
    end
  end
  log("async.run(entries %d, %s)", entries, fs[2])
  flush()
  local path = helper.tmpname()
  local fsdir = helper.tmpname()
  os.remove(fsdir)
  assert(os.execute("mkdir " .. fsdir))
  local failures = {}
  local report = {}
  local ok, res = pcall(async.run, { entries = entries, flags = fs[1] ~= 0 and fs[1] or nil,
                                     on_error = function(err)
                                       failures[#failures + 1] = tostring(err)
                                     end }, function()
    local server = assert(async.listen("127.0.0.1", 0))
    local _, port = server:getsockname()
    local stop = false
    local conns = {}
    -- The echo server: a task per connection, each echoes lines back.
    local acceptor = async.spawn(function()
      while not stop do
        local c, err = server:accept()
        if not c then
          if err == "closed" then return end
          error("accept: " .. tostring(err))
        end
        conns[#conns + 1] = c
        async.spawn(function()
          while true do
            local line, err2 = c:receive("*l")
            if not line then
              check(err2 == "closed" or err2 == "timeout", "echo receive: %s", tostring(err2))
              break
            end
            local ok2, err3 = c:send(line .. "\n")
            if not ok2 then
              check(err3 == "closed", "echo send: %s", tostring(err3))
              break
            end
          end
          c:close()
        end)
      end
    end)
    local tasks = {}
    local file = assert(async.open(path, "w+"))
    local model = ""
    local file_busy = false
    local qmax = rnd(1, 3)
    local q = async.queue(qmax)
    local kinds = { "echo", "echo", "sleep", "timeout", "file", "queue", "cancelled", "closer",
                    "nop", "fsops", "recv_timeout" }
    for i = 1, steps do
      local kind = pick(kinds)
      stats.tasks = stats.tasks + 1
      local t = async.spawn(function()
        if kind == "echo" then
          local c = assert(async.connect("127.0.0.1", port))
          for k = 1, rnd(1, 4) do
            local msg = payload(rnd(0, 3000)):gsub("\n", "_")
            local sent, err = c:send(msg .. "\n")
            check(sent == #msg + 1, "echo client send: %s %s", tostring(sent), tostring(err))
            local back, err2 = c:receive("*l")
            check(back == msg, "echo: %s back (%s) for a %d-byte line %d", tostring(back and #back),
                  tostring(err2), #msg, k)
          end
          c:close()
        elseif kind == "sleep" then
          local d = rnd() * 0.01
          local t0 = async.now()
          async.sleep(d)
          check(async.now() - t0 >= d - 0.001, "sleep(%g) woke early", d)
        elseif kind == "timeout" then
          local d = rnd() * 0.01
          local t0 = async.now()
          local r1, r2 = async.timeout(d, function()
            async.sleep(d + 0.05)
            return "late"
          end)
          if r1 == "late" and async.now() - t0 >= d + 0.05 then
            -- The loop woke after both deadlines (a busy machine): the sleep ended first
            -- and keeps its result, as documented.
            r1, r2 = nil, "timeout"
          end
          check(r1 == nil and r2 == "timeout", "timeout: %s %s", tostring(r1), tostring(r2))
          local r3 = async.timeout(0.5, function() return "in time" end)
          check(r3 == "in time", "timeout in time: %s", tostring(r3))
        elseif kind == "file" then
          while file_busy do async.sleep(0) end
          file_busy = true
          -- Released however the task ends. A task cancelled in a write_at may have
          -- written (its request ended before it woke): the model is read back then.
          local clean = false
          local _ <close> = setmetatable({}, { __close = function()
            file_busy = false
            if not clean then
              local h = assert(io.open(path, "rb"))
              model = h:read("a")
              h:close()
            end
          end })
          local off = rnd(0, #model + 10)
          local data = payload(rnd(0, 5000))
          local okw, errw = file:write_at(data, off)
          check(okw, "write_at: %s", tostring(errw))
          if #data > 0 then
            if off > #model then model = model .. string.rep("\0", off - #model) end
            model = model:sub(1, off) .. data .. model:sub(off + #data + 1)
          end
          local roff = rnd(0, #model)
          local got = file:read_at(rnd(1, 6000), roff) or ""
          check(got == model:sub(roff + 1, roff + #got) and
                (#got > 0 or roff >= #model), "read_at: other bytes than written")
          local st = async.stat(path)
          check(st and st.size == #model, "stat size %s, model %d", tostring(st and st.size),
                #model)
          clean = true
        elseif kind == "queue" then
          if chance(0.5) then
            if #q < qmax then q:put(i) end  -- never waits: the tasks are joined in order
          else
            local v = q:get(0.01)
            check(v == nil or math.type(v) == "integer", "queue value %s", tostring(v))
          end
        elseif kind == "cancelled" then
          async.sleep(100)  -- cancelled below
          error("a cancelled task went on")
        elseif kind == "closer" then
          -- Receives on a connection that another task closes under it.
          local c = assert(async.connect("127.0.0.1", port))
          local closer = async.spawn(function()
            async.sleep(rnd() * 0.005)
            c:close()
          end)
          local line, err = c:receive("*l")
          check(line == nil and err == "closed",
                "receive on a socket closed by another task: %s %s",
                tostring(line), tostring(err))
          closer:join()
        elseif kind == "fsops" then
          -- mkdir, rename, remove on a name of its own: each result is known.
          local d = fsdir .. "/t" .. i
          check(async.mkdir(d) == true, "mkdir %s", d)
          local ok1, e1 = async.mkdir(d)
          check(ok1 == nil and type(e1) == "string", "mkdir of an existing name: %s", tostring(e1))
          local st = async.stat(d)
          check(st and st.type == "directory", "stat of a new directory: %s",
                tostring(st and st.type))
          check(async.rename(d, d .. "x") == true, "rename")
          check(async.stat(d) == nil, "the old name after rename")
          check(async.remove(d .. "x") == true, "remove")
          check(async.stat(d .. "x") == nil, "a removed directory")
        elseif kind == "recv_timeout" then
          -- A receive that times out: its request is cancelled in the kernel.
          local c = assert(async.connect("127.0.0.1", port))
          c:settimeout(rnd() * 0.005)
          local line, err = c:receive("*l")
          check(line == nil and err == "timeout", "receive with a timeout: %s %s", tostring(line),
                tostring(err))
          c:settimeout(nil)
          local sent = c:send("after\n")
          check(sent == 6, "send after a timeout: %s", tostring(sent))
          check(c:receive("*l") == "after", "echo after a timed-out receive")
          c:close()
        elseif kind == "nop" then
          -- The callback API on the loop's ring, a coroutine as the callback.
          local r = async.ring()
          local me = coroutine.running()
          local h = r:nop(me)
          if h then
            local _, got = coroutine.yield()
            check(got == 0, "nop through a coroutine: %s", tostring(got))
          end
        end
      end)
      tasks[#tasks + 1] = { t = t, kind = kind }
      if kind == "cancelled" or chance(0.05) then
        async.sleep(rnd() * 0.002)
        t:cancel()
      end
      if chance(0.3) then async.sleep(0) end
    end
    for _, rec in ipairs(tasks) do
      local ok2, err = rec.t:join(10)
      if ok2 == nil then fail("task %s did not end in 10 s", rec.kind) end
      if not ok2 then
        if err ~= async.cancelled then
          report[#report + 1] = rec.kind .. ": " .. tostring(err)
        end
      end
    end
    -- Drain the queue so its putters end.
    while #q > 0 do q:get(0) end
    stop = true
    server:close()
    acceptor:join(5)
    for _, c in ipairs(conns) do c:close() end
    file:close()
    return "done"
  end)
  os.remove(path)
  os.execute("rm -rf " .. helper.shell_quote(fsdir))
  if not ok then fail("async.run raised: %s", tostring(res)) end
  check(res == "done", "async.run returned %s", tostring(res))
  if #report > 0 then fail("async tasks failed: %s", table.concat(report, "; ")) end
  if #failures > 0 then fail("async tasks failed unjoined: %s", table.concat(failures, "; ")) end
end

-- ==== The episode ===============================================================================

local t0 = now()
log("episode %d", SEED)
for _ = 1, rnd(1, 3) do
  raw_phase(rnd(100, 500))
end
if chance(0.7) then async_phase(rnd(5, 40)) end

-- Everything the episode made is closed: the same descriptors as at the start.
for _, s in ipairs(streams) do
  if not s.retired then
    s.retired = true
    if s.kind == "tcp" then
      if owned[s.rfd] then disown_close(s.rfd) end
      if owned[s.wfd] then disown_close(s.wfd) end
    elseif s.kind == "pipe" then
      testlib.close(s.rfd)
      testlib.close(s.wfd)
    elseif s.pair and not s.pair.closed_fds then
      s.closed_fds = true
      testlib.close(s.rfd)
      testlib.close(s.wfd)
    end
  end
end
for fd in pairs(owned) do disown_close(fd) end
for _, f in ipairs(files) do luring.close_fd_now(f.fd) end
luring.close_fd_now(devnull)
luring.close_fd_now(listen_fd)
luring.close_fd_now(spare_sock)
collectgarbage()
collectgarbage()
local fd_end = helper.fd_count()
check(fd_end == fd_start, "descriptors: %d at the start, %d at the end (a leak)", fd_start, fd_end)
os.execute("rm -rf " .. helper.shell_quote(scratch))
helper.cleanup()
local parts = {}
for _, k in ipairs({ "ops", "cbs", "bad", "chains", "raised", "rings", "closes", "waits",
                     "tasks", "slowcloses", "fixed" }) do
  parts[#parts + 1] = k .. "=" .. stats[k]
end
out:write("FUZZ_STATS ", table.concat(parts, " "),
          fmt(" ms=%d", math.floor((now() - t0) * 1000)), "\n")
out:flush()
