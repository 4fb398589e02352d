-- Argo CD health check for eventbridgepartner.dev/PartnerEventSource.
--
-- Install it as resource.customizations.health.eventbridgepartner.dev_PartnerEventSource in
-- argocd-cm (see argocd-cm.yaml beside this file). Argo CD sets `obj` to the live object
-- and reads the returned table's status and message.
--
--   Suspended    a Paused condition with status True (the eventbridgepartner.dev/paused
--                annotation stops every AWS call); the message is the condition's.
--   Healthy      Ready=True (reasons Created, Adopted, Recreated, and Observed for
--                managementPolicy: Observe).
--   Progressing  no status or conditions yet; status.observedGeneration behind
--                metadata.generation; no Ready condition or Ready=Unknown; Ready=False
--                with a reason the operator gets past by itself (Creating, Retrying,
--                Deleting); an object being deleted whose Ready is still True.
--   Degraded     Ready=False with any other reason: InvalidSpec, NameConflict, NoRegion,
--                NotPermitted (outside the partner account's grant), PartnerAccountNotReady,
--                NotFound (Observe, and the source is not in AWS), Expired (AWS expired a
--                source its customer never activated; the message says how to create it
--                again or remove it, whatever the condition's message), and the terminal AWS reasons OperationDisabled,
--                AccessDenied, InvalidCredentials, InvalidRequest, Terminal. These need a
--                person, so a reason this script does not know is treated the same way.
--
-- For an object being deleted the verdict also goes into deletionMessage: Argo CD 3.6 and
-- later show a terminating object as "Pending deletion" unless the check sets it, and the
-- operator's own word (say, why the delete in AWS is retrying) says more.
local hs = {}

-- Ready=False reasons the operator gets past without help.
local transient = {
  Creating = true,
  Retrying = true,
  Deleting = true,
}

-- Argo CD runs a custom check without Lua's string library, so this is said in full rather
-- than appended to the operator's message when that lacks it.
local expired = "AWS expired the partner event source because its customer never activated "
  .. "it; set spec.onExpiry: Recreate to create it again, or delete the object"

local function describe(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return condition.reason or ""
end

local function condition(conditions, kind)
  local found = nil
  for _, c in ipairs(conditions) do
    if c.type == kind then
      found = c
    end
  end
  return found
end

local terminating = obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil

-- The verdict as (status, message).
local function assess()
  if obj.status == nil or obj.status.conditions == nil then
    return "Progressing", "Waiting for the operator to report status"
  end

  local paused = condition(obj.status.conditions, "Paused")
  if paused ~= nil and paused.status == "True" then
    return "Suspended", describe(paused)
  end

  local generation = obj.metadata and obj.metadata.generation
  local observed = obj.status.observedGeneration
  if generation ~= nil and observed ~= nil and observed < generation then
    return "Progressing", "Waiting for the operator to observe generation " .. generation
  end

  local ready = condition(obj.status.conditions, "Ready")
  if ready == nil then
    return "Progressing", "Waiting for the Ready condition"
  end
  if ready.status == "Unknown" then
    return "Progressing", describe(ready)
  end

  if ready.status == "True" then
    if terminating then
      return "Progressing", "Pending deletion; " .. describe(ready)
    end
    return "Healthy", describe(ready)
  end

  if transient[ready.reason] then
    return "Progressing", describe(ready)
  end
  if ready.reason == "Expired" then
    return "Degraded", expired
  end
  return "Degraded", describe(ready)
end

hs.status, hs.message = assess()
if terminating then
  hs.deletionMessage = hs.message
end
return hs
