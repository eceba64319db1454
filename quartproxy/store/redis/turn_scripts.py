"""The Lua scripts of a turn's first and last write (begin, finish) and of the worker leases
(renew, extend, lapsed) of the Redis store; registered with the others in scripts.py."""

from __future__ import annotations

# The first and the last write of a turn (TurnRunner), each one script call on the session's
# slot; the history index and the owner's turn list (other slots) are written in the same
# pipeline (see RedisStore.begin_turn).
# KEYS: busy, bufm, buf, sbuf, erased, hist.
# ARGV: mid, sid, now, busy_ttl, buffer exp, buffer ttl_ms, oldest history c, #history,
#       owner ('' for none), the history items, then seq, record of each event.
_BUF_ADD = """
local function buf_add(first, last, shift)
  -- the events ARGV[first..] (seq, record pairs), their seqs moved by `shift`, that are
  -- above `last` (the others are replays); -> the new last, whether any was added
  local added = false
  for i = first, #ARGV, 2 do
    local seq = tonumber(ARGV[i]) + shift
    if last == nil or seq > last then
      redis.call('XADD', KEYS[3], seq .. '-1', 's', seq, 'r', ARGV[i + 1])
      last = seq
      added = true
    end
  end
  if added then
    redis.call('HSET', KEYS[2], 'sid', ARGV[2], 'exp', ARGV[5], 'last', last)
    redis.call('PEXPIRE', KEYS[2], ARGV[6])
    redis.call('PEXPIRE', KEYS[3], ARGV[6])
    redis.call('SADD', KEYS[4], ARGV[1])
    if redis.call('PTTL', KEYS[4]) < tonumber(ARGV[6]) then
      redis.call('PEXPIRE', KEYS[4], ARGV[6])
    end
  end
  return last, added
end
local function hist_add()
  local n = tonumber(ARGV[8])
  if n == 0 then return end
  for i = 10, 9 + n do redis.call('RPUSH', KEYS[6], ARGV[i]) end
end
"""

# -> -2 busy (nothing written), -1 acquired (nothing appended: erased), else the last seq added.
# Idempotent: run again for the flag's own message (a retry after a lost reply), it appends
# only the events not stored yet, and the history only with them.
_BEGIN = (
    _BUF_ADD
    + """
local v = redis.call('HMGET', KEYS[1], 'mid', 'exp')
local now = tonumber(ARGV[3])
local again = v[1] == ARGV[1]
if v[1] and tonumber(v[2]) > now and not again then return -2 end
local busy_ttl = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'mid', ARGV[1], 'exp', string.format('%.17g', now + busy_ttl))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(busy_ttl * 1000)))
if redis.call('EXISTS', KEYS[5]) == 1 then return -1 end
local last0 = tonumber(redis.call('HGET', KEYS[2], 'last'))
local last, added = buf_add(10 + tonumber(ARGV[8]), last0, 0)
if added or not again then hist_add() end
if added then return last end
return -1
"""
)

# -> {last seq added or -1, {seq, record, ...} of the buffer from the first given seq on when
#    it already held some (see Store.finish_turn), else {}}.
# Mirrors core.turn_buffer.finish_outcome (tests/unit/test_store_differential.py compares).
_FINISH = (
    _BUF_ADD
    + """
if redis.call('HGET', KEYS[1], 'mid') == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('EXISTS', KEYS[5]) == 1 then return {-1, {}} end
local first = 10 + tonumber(ARGV[8])
if first > #ARGV then return {-1, {}} end
local m = redis.call('HMGET', KEYS[2], 'last', 'fin')
local last = tonumber(m[1])
local seq0 = tonumber(ARGV[first])
if last ~= nil and last < seq0 and m[2] == '1' then
  -- ended by another worker (an orphan): keep that end
  local e = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
  local f = e[2]
  local seq, rec
  for i = 1, #f, 2 do
    if f[i] == 's' then seq = f[i + 1] elseif f[i] == 'r' then rec = f[i + 1] end
  end
  return {-1, {seq, rec}}
end
if last == nil or last < seq0 then
  local new_last, added = buf_add(first, last, 0)
  if added then redis.call('HSET', KEYS[2], 'fin', '1') end
  hist_add()
  if added then return {new_last, {}} end
  return {-1, {}}
end
local known = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[3], seq0 .. '-0', '+')) do
  local f = e[2]
  local seq, rec
  for i = 1, #f, 2 do
    if f[i] == 's' then seq = f[i + 1] elseif f[i] == 'r' then rec = f[i + 1] end
  end
  known[#known + 1] = seq
  known[#known + 1] = rec
  local kind = cjson.decode(rec)['type']
  if kind == 'end' or kind == 'error' then return {-1, known} end
end
-- none of them is final: the given events go after the buffer's last one
local shift = last + 1 - seq0
for i = first, #ARGV, 2 do
  known[#known + 1] = tostring(tonumber(ARGV[i]) + shift)
  known[#known + 1] = ARGV[i + 1]
end
local new_last = buf_add(first, last, shift)
redis.call('HSET', KEYS[2], 'fin', '1')
hist_add()
return {new_last, known}
"""
)
# KEYS: workers, wt:<wid> (the `{w}` slot). ARGV: wid, lease exp, then the mid of each turn.
# -> the mids the worker no longer owns. The busy flags are extended by _EXTEND, one call per
# session (their own slots), in the same pipeline.
_RENEW = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], 86400000)
local lost = {}
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[2], ARGV[i]) == 0 then lost[#lost + 1] = ARGV[i] end
end
return lost
"""

# KEYS: busy. ARGV: mid, exp, ttl_ms. The flag lasts until exp if it is still this message's.
_EXTEND = """
if redis.call('HGET', KEYS[1], 'mid') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'exp', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 0
"""

# KEYS: workers. ARGV: now, limit, prefix of the wt keys (same `{w}` slot as KEYS[1], so
# computing them is cluster-safe). -> {wid, sid, mid, ...} of the turns of lapsed
# workers; lapsed workers without turns are removed.
_LAPSED = """
local out = {}
local n = 0
local limit = tonumber(ARGV[2])
for _, wid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])) do
  local owned = redis.call('HGETALL', ARGV[3] .. wid)
  if #owned == 0 then
    redis.call('ZREM', KEYS[1], wid)
  else
    for i = 1, #owned, 2 do
      if n >= limit then return out end
      out[#out + 1] = wid
      out[#out + 1] = owned[i + 1]
      out[#out + 1] = owned[i]
      n = n + 1
    end
  end
end
return out
"""
