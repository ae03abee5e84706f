import { ChannelIcon, messageChannel } from "./channels";
import { useEffect, useRef, useState } from "react";
import { api, ParsedMail, MessageSummary } from "./api";
import { errorText } from "./errors";
import { useFormat } from "./format";
import { useI18n } from "./i18n";

// The mail's HTML comes sanitised by ingestion (no scripts, handlers, forms, frames;
// remote images parked in data-sb-blocked-src). It is shown in a sandboxed frame that may
// not run scripts; links open outside it. "Show images" puts the parked sources back.
function frameDoc(html: string, images: boolean, inline: Record<string, string>): string {
  let body = images ? html.replace(/\sdata-sb-blocked-src=/g, " src=") : html;
  // images sent inside the mail (cid:) come from its attachments, when they may be seen
  body = body.replace(/\ssrc="cid:([^"]*)"/gi, (whole, cid: string) => {
    let key = cid.replace(/&amp;/g, "&");
    try {
      key = decodeURIComponent(key);
    } catch {
      /* kept as written */
    }
    const url = inline[key] ?? inline[key.replace(/^<|>$/g, "")];
    return url ? ` src="${url}"` : whole;
  });
  return (
    '<!doctype html><html><head><meta charset="utf-8"><base target="_blank">' +
    "<style>body{font:14px/1.5 system-ui,sans-serif;margin:8px;color:#222;word-break:break-word}" +
    "img{max-width:100%}blockquote{border-left:3px solid #ccc;margin-left:0;padding-left:8px}</style>" +
    `</head><body>${body}</body></html>`
  );
}

export function MailFrame({ html, images, inline }: { html: string; images: boolean; inline: Record<string, string> }) {
  const { t } = useI18n();
  const ref = useRef<HTMLIFrameElement>(null);
  const [height, setHeight] = useState(120);
  const fit = () => {
    const doc = ref.current?.contentDocument;
    if (doc?.body) setHeight(Math.max(60, Math.min(4000, doc.documentElement.scrollHeight + 4)));
  };
  return (
    <iframe
      ref={ref}
      className="mailframe"
      title={t("mail.frame")}
      sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
      referrerPolicy="no-referrer"
      srcDoc={frameDoc(html, images, inline)}
      style={{ height }}
      onLoad={fit}
      data-testid="mail-frame"
    />
  );
}

function inlineUrls(mail: ParsedMail): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [cid, index] of Object.entries(mail.inline_images ?? {})) {
    const a = mail.attachments.find((x) => x.index === index);
    if (a) out[cid] = a.download_url;
  }
  return out;
}

// "Always show images from this sender", remembered in this browser. Not offered where the
// address is masked: one mask stands for many senders.
const imagesKey = (sender: string) => `sb.images.${sender}`;

function trustedSender(sender: string): boolean {
  try {
    return !!sender && localStorage.getItem(imagesKey(sender)) === "1";
  } catch {
    return false;
  }
}

function addressList(a: ParsedMail["from"] | ParsedMail["to"]): string {
  const list = Array.isArray(a) ? a : a ? [a] : [];
  return list.map((x) => (x.name ? `${x.name} <${x.address}>` : x.address)).join(", ");
}

export function MailCard({
  summary,
  open,
  mayDownload,
}: {
  summary: MessageSummary;
  open: boolean;
  mayDownload: boolean;
}) {
  const { t } = useI18n();
  const { dateTime } = useFormat();
  const [expanded, setExpanded] = useState(open);
  const [mail, setMail] = useState<ParsedMail | null>(null);
  const [error, setError] = useState("");
  const sender = (summary.from?.address ?? "").toLowerCase();
  const rememberable = !!sender && !sender.includes("***@");
  const [always, setAlways] = useState(() => rememberable && trustedSender(sender));
  const [images, setImages] = useState(always);
  const remember = (on: boolean) => {
    setAlways(on);
    try {
      if (on) localStorage.setItem(imagesKey(sender), "1");
      else localStorage.removeItem(imagesKey(sender));
    } catch {
      /* storage unavailable: this time only */
    }
  };

  useEffect(() => {
    if (!expanded || mail) return;
    api
      .get<{ parsed: ParsedMail | null }>(`/messages/${summary.id}`)
      .then((m) => setMail(m.parsed))
      .catch((e) => setError(errorText(e, t)));
  }, [expanded, mail, summary.id, t]);

  const sent = summary.channel === "sent";
  const infected = mail?.virus_scan?.state === "infected"; // the server refuses its files too
  return (
    <article className={`mail${sent ? " sent" : ""}`} data-testid="mail" data-channel={summary.channel}>
      <header onClick={() => setExpanded(!expanded)}>
        <ChannelIcon kind={messageChannel(summary)} testId="timeline-channel" />{" "}
        <strong>{summary.from?.name || summary.from?.address}</strong>
        <span className="muted"> {summary.subject}</span>
        {summary.stranger && (
          <span className="badge warn" title={t("mail.stranger_hint")} data-testid="mail-stranger">
            {t("mail.stranger")}
          </span>
        )}
        {summary.sender_verified === false && (
          <span className="badge warn" title={t("mail.unverified_hint")} data-testid="mail-unverified">
            {t("mail.unverified")}
          </span>
        )}
        {summary.sender_verified && summary.sender_auth && (
          <span
            className="badge ok"
            title={t("mail.verified_hint", {
              method: summary.sender_auth.method.toUpperCase(),
              host: summary.sender_auth.authserv_id,
            })}
            data-testid="mail-verified"
          >
            {t("mail.verified")}
          </span>
        )}
        <span className="spacer" />
        {summary.auto_submitted && <span className="badge">{t("mail.auto")}</span>}
        <span className="muted small">{dateTime(summary.received_at)}</span>
      </header>
      {!expanded && <p className="snippet muted">{summary.snippet}</p>}
      {expanded && (
        <div className="mailbody">
          {error && <p className="error">{error}</p>}
          {!mail && !error && <p className="muted">{t("mail.loading")}</p>}
          {mail && (
            <>
              <p className="small">
                {t("mail.from")}: {addressList(mail.from)}
                <br />
                {t("mail.to")}: {addressList(mail.to)}
              </p>
              {mail.virus_scan?.state === "infected" && (
                <div className="virus" role="alert" data-testid="virus-found">
                  <strong>{t("mail.virus_found")}</strong>
                  <ul>
                    {mail.virus_scan.findings.map((f) => (
                      <li key={f.index}>{t("mail.virus_item", { sig: f.signature, file: f.filename })}</li>
                    ))}
                  </ul>
                </div>
              )}
              {mail.virus_scan?.state === "not_scanned" && (
                <p className="small muted" title={mail.virus_scan.error ?? ""} data-testid="virus-not-scanned">
                  {t("mail.not_scanned")}
                </p>
              )}
              {mail.defects.length > 0 && (
                <details className="problems" open>
                  <summary>{t("mail.problems")}</summary>
                  <ul>
                    {mail.defects.map((d, i) => (
                      <li key={i}>{d}</li>
                    ))}
                  </ul>
                </details>
              )}
              {mail.html ? (
                <>
                  {mail.remote_images > 0 && (
                    <div className="row gap small">
                      {!images && (
                        <button className="small" onClick={() => setImages(true)} data-testid="show-images">
                          {t("mail.show_images", { n: mail.remote_images })}
                        </button>
                      )}
                      {rememberable && (images || always) && (
                        <label className="check">
                          <input
                            type="checkbox"
                            checked={always}
                            onChange={(e) => remember(e.target.checked)}
                            data-testid="always-images"
                          />
                          {t("mail.always_images", { s: sender })}
                        </label>
                      )}
                    </div>
                  )}
                  <MailFrame
                    html={mail.html}
                    images={images}
                    inline={mayDownload && !infected ? inlineUrls(mail) : {}}
                  />
                </>
              ) : (
                <pre className="mailtext" data-testid="mail-text">{mail.text}</pre>
              )}
              {mail.attachments.length > 0 && (
                <div className="attachments">
                  <strong>{t("mail.attachments")}</strong>
                  {mail.virus_scan?.state === "clean" && (
                    <span className="badge" data-testid="virus-clean">
                      {t("mail.scanned")}
                    </span>
                  )}
                  <ul>
                    {mail.attachments.map((a) => (
                      <li key={a.download_url}>
                        {infected ? (
                          <span title={t("mail.virus_blocked")} className="disabled">{a.filename}</span>
                        ) : mayDownload ? (
                          <a href={a.download_url} download={a.filename}>{a.filename}</a>
                        ) : (
                          <span title={t("mail.download_denied")} className="disabled">{a.filename}</span>
                        )}{" "}
                        <span className="muted small">({Math.ceil(a.size / 1024)} KB)</span>
                      </li>
                    ))}
                  </ul>
                </div>
              )}
            </>
          )}
        </div>
      )}
    </article>
  );
}
