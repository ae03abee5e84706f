// The words of the notifications (issue 17, item 7: toasts for the `notification` pushes of
// the live socket), in English and Japanese; merged into the app's dictionaries by i18n.ts
// (so `ja` must have every key `en` has: the build checks).

export const notifyEn = {
  "notif.region": "Notifications",
  "notif.dismiss": "Dismiss",
  "notif.someone": "the system",
  "notif.approval_requested": "Approval requested by {name}",
  "notif.approval_next": "{name} approved stage {n}: your approval is requested",
  "notif.approval_reminder": "Reminder: stage {n} is late",
  "notif.approved": "Approved by {name}",
  "notif.sent": "Approved and sent by {name}",
  "notif.sent_back": "Sent back by {name}",
  "notif.voided": "Approval voided: the draft changed after it was approved",
  "notif.cancelled": "{name} cancelled your approval request",
  "notif.assigned": "Assigned to you by {name}",
  "notif.assigned_auto": "Assigned to you by automatic routing",
  "notif.assigned_many": "{n} tickets assigned to you",
  "notif.assigned_many_auto": "{n} tickets assigned to you by automatic routing",
  "notif.assigned_many_by": "{n} tickets assigned to you by {name}",
  "notif.mentioned": "{name} mentioned you",
  "notif.rule": "Rule “{rule}”",
};

export const notifyJa: Record<keyof typeof notifyEn, string> = {
  "notif.region": "通知",
  "notif.dismiss": "閉じる",
  "notif.someone": "システム",
  "notif.approval_requested": "{name}さんから承認依頼",
  "notif.approval_next": "{name}さんが第{n}段階を承認しました。あなたの承認をお待ちしています",
  "notif.approval_reminder": "リマインダー：第{n}段階が期限超過です",
  "notif.approved": "{name}さんが承認しました",
  "notif.sent": "{name}さんが承認して送信しました",
  "notif.sent_back": "{name}さんが差し戻しました",
  "notif.voided": "承認が無効になりました（承認後に下書きが変更されました）",
  "notif.cancelled": "{name}さんがあなたの承認依頼を取り消しました",
  "notif.assigned": "{name}さんがあなたに割り当てました",
  "notif.assigned_auto": "自動振り分けであなたに割り当てられました",
  "notif.assigned_many": "{n}件のチケットがあなたに割り当てられました",
  "notif.assigned_many_auto": "自動振り分けで{n}件のチケットがあなたに割り当てられました",
  "notif.assigned_many_by": "{name}さんが{n}件のチケットをあなたに割り当てました",
  "notif.mentioned": "{name}さんがあなたをメンションしました",
  "notif.rule": "ルール「{rule}」",
};
