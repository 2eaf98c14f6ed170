-- SPDX-License-Identifier: Apache-2.0
-- The README documents the API that exists: every function of luring and luring.async,
-- every ring method, every constant (exactly the names each table has), and its code
-- blocks are the example programs, whose line counts it states.
local luring = require "luring"
local async = require "luring.async"
local helper = require "helper"

local cases = {}
local function case(name, fn) cases[#cases + 1] = { name, fn } end

local readme = helper.slurp("../../README.md")
local function documented(text) return readme:find(text, 1, true) ~= nil end

case("functions", function()
  local missing = {}
  for name, v in pairs(luring) do
    if type(v) == "function" and name:sub(1, 1) ~= "_" and
       not (documented("luring." .. name .. "(") or documented("ring:" .. name .. "(")) then
      missing[#missing + 1] = "luring." .. name
    end
  end
  local ring = luring.queue_init(2)
  for name in pairs(debug.getmetatable(ring).__index) do
    if not (documented("ring:" .. name .. "(") or documented("luring." .. name .. "(")) then
      missing[#missing + 1] = "ring:" .. name
    end
  end
  ring:close()
  for name, v in pairs(async) do
    if type(v) == "function" and not documented("async." .. name .. "(") then
      missing[#missing + 1] = "async." .. name
    end
  end
  table.sort(missing)
  assert(#missing == 0, "not in the README: " .. table.concat(missing, ", "))
end)

case("constants", function()
  local tables = 0
  for name, t in pairs(luring) do
    if type(t) == "table" then
      tables = tables + 1
      local line = readme:match("\n%- `luring%." .. name .. "` — [^\n]*")
      assert(line, "luring." .. name .. " has no line in the README's constants")
      local listed = {}
      for c in line:match(": (.*)$"):gmatch("`([%w_]+)`") do listed[c] = true end
      for c in pairs(t) do assert(listed[c], "luring." .. name .. "." .. c .. " is not listed") end
      for c in pairs(listed) do
        assert(rawget(t, c) ~= nil, "README lists luring." .. name .. "." .. c .. ", which does not exist")
      end
    end
  end
  assert(tables >= 13, tables)
end)

-- Every ```lua and ```cpp block in the README is an example program, and the table of
-- examples names each one with its length.
case("code_blocks_are_examples", function()
  local examples = {}
  local p = assert(io.popen("cd ../../examples && find . -name '*.lua' -o -name '*.cpp' | sort"))
  for path in p:lines() do
    local name = "examples/" .. path:gsub("^%./", "")
    examples[#examples + 1] = { name = name, text = helper.slurp("../../" .. name) }
  end
  p:close()
  local blocks = 0
  for lang, block in readme:gmatch("```(%a+)\n(.-)```") do
    if lang == "lua" or lang == "cpp" then
      blocks = blocks + 1
      local found = false
      for _, e in ipairs(examples) do found = found or e.text == block end
      assert(found, "a README code block is not an example file:\n" .. block)
    end
  end
  assert(blocks >= 4, blocks)
  for _, e in ipairs(examples) do
    local lines = select(2, e.text:gsub("\n", "\n"))
    local row = readme:match("\n| %[[^%]]+%]%(" .. e.name:gsub("%p", "%%%0") .. "%) | (%d+) |")
    assert(row, e.name .. " is not in the README's table of examples")
    assert(tonumber(row) == lines, ("%s: the README says %s lines, it has %d"):format(e.name, row, lines))
  end
end)

helper.run_cases(cases)
