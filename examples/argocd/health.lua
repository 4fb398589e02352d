-- Argo CD health check for eventbridgepartner.dev/PartnerEventSource.
--
-- Install it as resource.customizations.health.eventbridgepartner.dev_PartnerEventSource in
-- argocd-cm (see argocd-cm.yaml beside this file). Argo CD sets `obj` to the live object
-- and reads the returned table's status and message.
--
--   Healthy      Ready=True (reasons Created, Adopted, Recreated).
--   Progressing  no status or conditions yet; status.observedGeneration behind
--                metadata.generation; no Ready condition or Ready=Unknown; Ready=False
--                with a reason the operator recovers from by itself (Retrying, Deleting).
--   Degraded     Ready=False with any other reason: InvalidSpec, NameConflict, NoRegion,
--                and the terminal AWS reasons OperationDisabled, AccessDenied,
--                InvalidCredentials, InvalidRequest, Terminal. These need a person, so a
--                reason this script does not know is treated the same way.
local hs = {}

-- Ready=False reasons the operator retries without help.
local transient = {
  Retrying = true,
  Deleting = true,
}

local function describe(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason or ""
end

if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and observed ~= nil and observed < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local ready = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  end
end

if ready == nil or ready.status == "Unknown" then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  if ready ~= nil then
    hs.message = describe(ready)
  end
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
  return hs
end

if transient[ready.reason] then
  hs.status = "Progressing"
else
  hs.status = "Degraded"
end
hs.message = describe(ready)
return hs
