-- SPDX-License-Identifier: Apache-2.0
-- luring.probe() and queue_init's reasons: the same report as luring-probe, and the
-- unavailable paths for real, in children whose seccomp filter blocks io_uring.
local luring = require "luring"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

-- The report on this machine (asked for again in every case's process).
local r = luring.probe()

-- Its shape.
case("report", function()
  assert(r.available == true)
  assert(r.error == nil and r.errno == nil)
  local uname = io.popen("uname -r"):read("l")
  assert(r.kernel == uname, r.kernel)
  assert(math.type(r.features.value) == "integer" and r.features.value > 0)
  local feature_names = {}
  for _, n in ipairs(r.features.names) do feature_names[n] = true end
  assert(next(feature_names), "no feature names")
  assert(r.probe.supported and r.probe.last_op == #r.ops - 1)
  local seen = {}
  local by_name = {}
  for i, op in ipairs(r.ops) do
    assert(op.code == i - 1)
    assert(not seen[op.name], "duplicate opcode name " .. op.name)
    seen[op.name] = true
    by_name[op.name] = op
  end
  for _, name in ipairs({ "nop", "read", "write", "readv", "accept", "recv", "send" }) do
    assert(by_name[name] and by_name[name].supported, name)
  end
  assert(#r.setup_flags >= 13)
  for _, f in ipairs(r.setup_flags) do
    assert(type(f.name) == "string" and math.type(f.value) == "integer")
    assert(type(f.supported) == "boolean" and type(f.status) == "string")
  end
end)

-- The same answers as luring-probe --json (same code underneath, asked separately).
case("same_as_tool", function()
  local tool = os.getenv("LURING_PROBE")
  if tool then
    local json = io.popen(tool .. " --json"):read("a")
    local value = json:match('"features":%s*{%s*"value":%s*(%d+)')
    assert(tonumber(value) == r.features.value, value)
    local last_op = json:match('"last_op":%s*(%d+)')
    assert(tonumber(last_op) == r.probe.last_op)
    for _, op in ipairs(r.ops) do
      local pattern = '"code":%s*' .. op.code .. ',%s*"name":%s*"' ..
                      op.name:gsub("%p", "%%%0") .. '"'
      assert(json:find(pattern), op.name)
    end
  end
end)

-- Unavailable: a child whose seccomp filter makes io_uring_setup fail.
-- `case` is { errno name, errno number }.
local function unavailable(case)
  local launcher = os.getenv("SECCOMP_EXEC")
  if not launcher then
    print("note: SECCOMP_EXEC not set, seccomp paths not tested")
    return
  end
  local child = helper.tmpname()
  local f = assert(io.open(child, "w"))
  f:write([[
    local luring = require "luring"
    local r = luring.probe()
    print("available=" .. tostring(r.available))
    print("cause=" .. tostring(r.cause))
    print("errno=" .. tostring(r.errno))
    print("reason=" .. tostring(r.reason))
    local ok, err = pcall(luring.queue_init, 8, 0)
    print("init_ok=" .. tostring(ok))
    print("init_err=" .. tostring(err))
  ]])
  f:close()
  local cmd = ("%s %s -- lua5.4 %s 2>&1"):format(launcher, case[1], child)
  local p = io.popen(cmd)
  local out = p:read("a")
  local ok, _, code = p:close()
  if code == 77 then
    print("note: seccomp filters are not available here: " .. out)
  else
    assert(ok, out)
    assert(out:find("available=false", 1, true), out)
    assert(out:find("cause=seccomp", 1, true), out)
    assert(out:find("errno=" .. case[2], 1, true), out)
    assert(out:find("init_ok=false", 1, true), out)
    assert(out:find("init_err=could not initialise queue: ", 1, true), out)
    assert(out:find("(" .. case[1] .. ")", 1, true), out)
    assert(out:find("seccomp", out:find("init_err"), true), out)  -- the reason says why
  end
end
case("seccomp_enosys", function() unavailable({ "ENOSYS", 38 }) end)
case("seccomp_eperm", function() unavailable({ "EPERM", 1 }) end)

helper.run_cases(cases)
