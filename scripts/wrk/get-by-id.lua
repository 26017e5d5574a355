-- wrk script: GET /scim/v2/Users/{id} over the ids in $IDS_FILE (one per
-- line), in turn per connection, with the bearer token in $TOKEN.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do
  ids[#ids + 1] = line
end
local token = os.getenv("TOKEN")
local counter = 0

request = function()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  return wrk.format("GET", "/scim/v2/Users/" .. id, {
    ["Authorization"] = "Bearer " .. token,
    ["Accept"] = "application/scim+json",
  })
end

done = function(summary, latency, requests)
  io.write(string.format("non-2xx or errors: %d\n",
    summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout))
end
