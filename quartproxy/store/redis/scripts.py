"""The Lua scripts of the Redis store (store/redis/), each run by EVALSHA on one hash slot.

Every script touches only the keys it is given, or keys it computes that carry the same hash
tag (same slot): so each runs atomically on one Redis Cluster node. Keys and their tags:
store/redis/client.py (RedisKeys). The scripts of a turn's first and last write and of the
worker leases are in turn_scripts.py.
"""

from __future__ import annotations

import hashlib

from .turn_scripts import _BEGIN, _EXTEND, _FINISH, _LAPSED, _RENEW

# KEYS: one rl key per tier. ARGV: now, then interval, burst, count, tolerance of each tier.
# -> {allowed, retry_after, remaining} per tier charged, stopping after the first refusal.
# %.17g round-trips a double exactly, so the Lua arithmetic equals core.limits.gcra bit for bit.
_GCRA = """
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local a = 2 + (i - 1) * 4
  local interval = tonumber(ARGV[a])
  local burst = tonumber(ARGV[a + 1])
  local count = tonumber(ARGV[a + 2])
  local tolerance = tonumber(ARGV[a + 3])
  local tat = tonumber(redis.call('GET', KEYS[i]))
  local base = now
  if tat ~= nil and tat >= now then base = tat end
  local new_tat = base + interval
  local allow_at = new_tat - burst
  if allow_at > now + tolerance then
    out[#out + 1] = {0, string.format('%.17g', allow_at - now), 0}
    return out
  end
  local remaining = math.floor((now - allow_at + tolerance) / interval)
  if remaining > count - 1 then remaining = count - 1 end
  if remaining < 0 then remaining = 0 end
  local ttl = math.max(1, math.ceil((new_tat - now) * 1000))
  redis.call('SET', KEYS[i], string.format('%.17g', new_tat), 'PX', ttl)
  out[#out + 1] = {1, '0', remaining}
end
return out
"""

# KEYS: one ct key per counter. ARGV: now, then the ttl of each counter. -> the new values.
_INCR = """
local now = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'n', 'exp')
  local n = tonumber(v[1])
  local exp = tonumber(v[2])
  if n == nil or exp == nil or exp <= now then
    n = 0
    exp = now + tonumber(ARGV[i + 1])
  end
  n = n + 1
  redis.call('HSET', KEYS[i], 'n', n, 'exp', string.format('%.17g', exp))
  redis.call('PEXPIRE', KEYS[i], math.max(1, math.ceil((exp - now) * 1000)))
  out[i] = n
end
return out
"""

_ACQUIRE = """
local v = redis.call('HMGET', KEYS[1], 'mid', 'exp')
local now = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
if v[1] and tonumber(v[2]) > now then return 0 end
redis.call('HSET', KEYS[1], 'mid', ARGV[1], 'exp', string.format('%.17g', now + ttl))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil(ttl * 1000)))
return 1
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'mid') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: hist, erased (one session's slot). ARGV: the items. The index is written beside it.
_HIST_APPEND = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
for i = 1, #ARGV do redis.call('RPUSH', KEYS[1], ARGV[i]) end
return 0
"""

# Rewrites one session's list without entries older than ARGV[1]. -> {removed, oldest kept c
# (text) or false}; the caller moves the session in the index (another slot).
_HIST_PURGE_ONE = """
local before = tonumber(ARGV[1])
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local kept = {}
local removed = 0
local oldest = nil
for _, raw in ipairs(items) do
  local c = tonumber(cjson.decode(raw)['c'])
  if c < before then
    removed = removed + 1
  else
    kept[#kept + 1] = raw
    if oldest == nil or c < oldest then oldest = c end
  end
end
if removed > 0 then
  redis.call('DEL', KEYS[1])
  for i = 1, #kept do redis.call('RPUSH', KEYS[1], kept[i]) end
end
if oldest == nil then return {removed, false} end
return {removed, string.format('%.17g', oldest)}
"""

# KEYS: sess, hist, busy, sbuf, erased (one session's slot). ARGV: the session's key prefix (its
# buffers' keys are computed: same hash tag, so same slot), erased ttl.
_DELETE_SESSION = """
local p = ARGV[1]
local mids = redis.call('SMEMBERS', KEYS[4])
for _, mid in ipairs(mids) do
  redis.call('DEL', p .. 'buf:' .. mid, p .. 'bufm:' .. mid)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
redis.call('SET', KEYS[5], '1', 'EX', ARGV[2])
return #mids
"""

# KEYS: bufm, buf, sbuf, erased. ARGV: sid, exp, ttl_ms, mid, fin (1: the event with the highest
# seq, the first such, is final: when anything is added it is the last event added),
# then seq, record of each event.
# -> the last seq added, -1 when nothing was (erased session, ended answer, or only replays).
# Mirrors core.turn_buffer.appendable; the fin flag caches core.events.is_final_record.
_BUF_APPEND = """
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local m = redis.call('HMGET', KEYS[1], 'last', 'fin')
if m[2] == '1' then return -1 end
local last = tonumber(m[1])
local added = nil
for i = 6, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if last == nil or seq > last then
    redis.call('XADD', KEYS[2], ARGV[i] .. '-1', 's', ARGV[i], 'r', ARGV[i + 1])
    last = seq
    added = ARGV[i]
  end
end
if added == nil then return -1 end
redis.call('HSET', KEYS[1], 'sid', ARGV[1], 'exp', ARGV[2], 'last', added)
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'fin', '1')
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[4])
if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
return last
"""

# The appends of several answers in one round trip (one Redis or Sentinel: no cluster, where
# their keys live in different slots). KEYS: per append bufm, buf, sbuf, erased, pointer.
# ARGV: per append a header n (events), sid, exp, ttl ms, mid, fin, pointer px (0: not due),
# then n pairs seq, record. Each append is _BUF_APPEND's body (plus its pointer SET, which a
# lone append sends beside the script), run under pcall so that an error in one append (a key of
# the wrong type) is that caller's alone. -> per append its new last seq (-1: nothing added), or
# the error text (a string).
_BUF_APPEND_MANY = """
local function append(k, a, n)
  if tonumber(ARGV[a + 6]) > 0 then
    redis.call('SET', KEYS[k + 4], ARGV[a + 1], 'PX', ARGV[a + 6])
  end
  if redis.call('EXISTS', KEYS[k + 3]) == 1 then return -1 end
  local m = redis.call('HMGET', KEYS[k], 'last', 'fin')
  if m[2] == '1' then return -1 end
  local last = tonumber(m[1])
  local added = nil
  local first = a + 7
  local stop = first + 2 * n - 2
  for i = first, stop, 2 do
    local seq = tonumber(ARGV[i])
    if last == nil or seq > last then
      redis.call('XADD', KEYS[k + 1], ARGV[i] .. '-1', 's', ARGV[i], 'r', ARGV[i + 1])
      last = seq
      added = ARGV[i]
    end
  end
  if added == nil then return -1 end
  redis.call('HSET', KEYS[k], 'sid', ARGV[a + 1], 'exp', ARGV[a + 2], 'last', added)
  if ARGV[a + 5] == '1' then
    redis.call('HSET', KEYS[k], 'fin', '1')
  end
  redis.call('PEXPIRE', KEYS[k], ARGV[a + 3])
  redis.call('PEXPIRE', KEYS[k + 1], ARGV[a + 3])
  redis.call('SADD', KEYS[k + 2], ARGV[a + 4])
  if redis.call('PTTL', KEYS[k + 2]) < tonumber(ARGV[a + 3]) then
    redis.call('PEXPIRE', KEYS[k + 2], ARGV[a + 3])
  end
  return last
end
local out = {}
local a = 1
for k = 1, #KEYS, 5 do
  local n = tonumber(ARGV[a])
  local ok, res = pcall(append, k, a, n)
  if ok then
    out[#out + 1] = res
  elseif type(res) == 'table' and res.err then
    out[#out + 1] = tostring(res.err)
  else
    out[#out + 1] = tostring(res)
  end
  a = a + 7 + 2 * n
end
return out
"""

# KEYS: bufm, buf. ARGV: now, first id. -> false | {sid, {seq, record, seq, record, ...}}
_BUF_READ = """
local m = redis.call('HMGET', KEYS[1], 'sid', 'exp')
if not m[1] or tonumber(m[2]) <= tonumber(ARGV[1]) then return false end
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[2], ARGV[2], '+')) do
  local f = e[2]
  local seq, rec
  for i = 1, #f, 2 do
    if f[i] == 's' then seq = f[i + 1] elseif f[i] == 'r' then rec = f[i + 1] end
  end
  out[#out + 1] = seq
  out[#out + 1] = rec
end
return {m[1], out}
"""

SCRIPTS = {  # name -> (text, sha1)
    name: (text, hashlib.sha1(text.encode()).hexdigest())
    for name, text in {
        "gcra": _GCRA,
        "incr": _INCR,
        "acquire": _ACQUIRE,
        "release": _RELEASE,
        "hist_append": _HIST_APPEND,
        "hist_purge_one": _HIST_PURGE_ONE,
        "delete_session": _DELETE_SESSION,
        "buf_append": _BUF_APPEND,
        "buf_append_many": _BUF_APPEND_MANY,
        "buf_read": _BUF_READ,
        "begin": _BEGIN,
        "finish": _FINISH,
        "renew": _RENEW,
        "extend": _EXTEND,
        "lapsed": _LAPSED,
    }.items()
}
