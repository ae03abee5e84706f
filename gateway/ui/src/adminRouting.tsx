import { assignSections } from "./adminAssign";
import { ruleSections } from "./adminRules";
import { slaSections } from "./adminSla";
import { Ctx, Section } from "./adminTypes";
import { webhookSections } from "./adminWebhooks";

// The administration of routing (issue 18): rules, calendars and SLA policies, each
// inbox's assignment and each operator's routing profile, the rules' webhooks — one group
// of sections.
export function routingSections(ctx: Ctx): Section[] {
  return [...ruleSections(ctx), ...webhookSections(ctx), ...slaSections(ctx), ...assignSections(ctx)];
}
