//! The Lua scripts: compare-and-set of a whole claim batch (C3–C7) and the checkpoint write,
//! fenced (C13) or not. Both are idempotent, so a resend after a cut connection is harmless. Each runs atomically on the server; each touches only keys of one scope (one hash tag),
//! so it works on Redis Cluster.
//!
//! [`redis::Script`] sends `EVALSHA` and, when the server answers `NOSCRIPT` (first use, or after
//! a restart or `SCRIPT FLUSH`), loads the script and retries once.

use redis::Script;

/// Claims of one scope by one owner: one write, whose etag all its won claims share.
///
/// `KEYS[1]` = the scope's ownership hash. `ARGV[1]` = the new etag (fresh, from the client: a
/// random store id and a counter, so it names this one write and never repeats, C5), `ARGV[2]` =
/// the owner id (`""` relinquishes, C8), then pairs per claim: partition id, expected etag (`""`
/// = create, C3). Returns `{stamp, wins}`: the write's `last_modified_time` in µs since the
/// epoch, and one byte per claim, `1` won or `0` lost (C6), or `?` on a resend (below).
///
/// Time comes from the server (`TIME`) and never goes back within a scope: the hash keeps the
/// latest stamp under the field `""` (no partition id is empty, C11), and a write is stamped
/// `max(now, that)` (C5). Keeping the clock in the same hash means it lives and is evicted with
/// the records it orders. µs since the epoch stay below 2^53, exact in a Lua double.
///
/// Idempotent: a call resent after a cut connection (redis-rs resends on its own on a cluster)
/// finds the records its first run wrote, named by `ARGV[1]`, and answers that run's stamp and
/// wins without writing again; otherwise a claim that won would come back as lost. A claim of
/// the batch without such a record is answered `?`: it lost in the first run, or won and was
/// taken over since, and the client reports the call's outcome as unknown.
///
/// Every won claim stores the same value, `<etag>\n<stamp>\n<owner>`, built once per call; per
/// claim the script only compares the stored etag in place (anchored `find` plus the separator
/// byte, no substring) and appends two table entries. One `HMGET` reads the batch and one `HSET`
/// writes the winners and the clock (in chunks: `unpack` has a stack limit).
const CLAIM_BATCH: &str = r#"
local t = redis.call('TIME')
local n = (#ARGV - 2) / 2
local fields = {''}
for i = 1, n do
  fields[i + 1] = ARGV[i * 2 + 1]
end
local current = {}
for s = 1, n + 1, 500 do
  local part = redis.call('HMGET', KEYS[1], unpack(fields, s, math.min(s + 499, n + 1)))
  for j = 1, #part do
    current[s + j - 1] = part[j]
  end
end
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local clock = current[1] and tonumber(current[1])
if clock and clock > now then
  now = clock
end
-- A retry of this very call (the client resent it after a cut connection) finds its own
-- records: ARGV[1] names one write and never repeats. Answer what the first run did.
local mine = ARGV[1] .. '\n'
local replay = {}
for i = 1, n do
  local cur = current[i + 1]
  replay[i] = (cur and string.find(cur, mine, 1, true) == 1) and '1' or '0'
end
local done = table.concat(replay)
if string.find(done, '1', 1, true) then
  -- A claim without this write's record lost in the first run, or won and was taken over
  -- since: '?', an outcome the client reports as unknown.
  local stamp = 0
  for i = 1, n do
    local cur = current[i + 1]
    if replay[i] == '1' then
      local a = #mine
      local b = string.find(cur, '\n', a + 1, true)
      stamp = tonumber(string.sub(cur, a + 1, b - 1))
    else
      replay[i] = '?'
    end
  end
  return {stamp, table.concat(replay)}
end
local stamp = string.format('%.0f', now)
local record = ARGV[1] .. '\n' .. stamp .. '\n' .. ARGV[2]
local wins, writes, w = {}, {'', stamp}, 2
for i = 1, n do
  local expected, cur = ARGV[i * 2 + 2], current[i + 1]
  local won
  if expected == '' then
    won = not cur
  else
    -- The stored etag is everything before the first newline (an etag holds none, C11).
    won = cur and string.byte(cur, #expected + 1) == 10 and string.find(cur, expected, 1, true) == 1
  end
  if won then
    writes[w + 1] = fields[i + 1]
    writes[w + 2] = record
    w = w + 2
    wins[i] = '1'
  else
    wins[i] = '0'
  end
end
if w > 2 then
  for s = 1, w, 1000 do
    redis.call('HSET', KEYS[1], unpack(writes, s, math.min(s + 999, w)))
  end
end
return {now, table.concat(wins)}
"#;

/// How long a checkpoint write is remembered as applied, so a resend of it is not applied again.
pub(crate) const APPLIED_MEMORY_MS: u64 = 60_000;

/// Checkpoint write, unconditional or fenced (C9, C13). `KEYS[1]` = ownership hash, `KEYS[2]` =
/// checkpoint hash, `KEYS[3]` = the scope's recently applied writes (a sorted set by time),
/// all of one scope. `ARGV[1]` = partition id, `ARGV[2]` = required owner (`""`: unfenced),
/// `ARGV[3]` = the encoded checkpoint, `ARGV[4]` = the write's id (fresh, never repeats).
/// Returns 1 when written (or already written by an earlier run of this write), 0 when the
/// fence refused it.
///
/// Idempotent: a write resent after a cut connection finds its id among the applied ones and
/// is not applied a second time (it could land after a newer checkpoint and overwrite it, and a
/// fenced write that was applied could be refused on its resend). Ids are kept
/// [`APPLIED_MEMORY_MS`], far longer than any resend; the set expires with them.
const SET_CHECKPOINT: &str = r#"
if redis.call('ZSCORE', KEYS[3], ARGV[4]) then
  return 1
end
if ARGV[2] ~= '' then
  local current = redis.call('HGET', KEYS[1], ARGV[1])
  if not current then
    return 0
  end
  local a = string.find(current, '\n', 1, true)
  local b = a and string.find(current, '\n', a + 1, true)
  if not b then
    return redis.error_reply('CORRUPT ownership record of partition ' .. ARGV[1])
  end
  if string.sub(current, b + 1) ~= ARGV[2] then
    return 0
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[3], now, ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[5]))
return 1
"#;

/// The scripts of a store, hashed once.
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    pub(crate) claim_batch: Script,
    pub(crate) set_checkpoint: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Scripts {
            claim_batch: Script::new(CLAIM_BATCH),
            set_checkpoint: Script::new(SET_CHECKPOINT),
        }
    }
}
