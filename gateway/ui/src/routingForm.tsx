import { useCallback, useEffect, useState } from "react";
import { api } from "./api";
import { errorText } from "./errors";
import { T, useI18n } from "./i18n";

// What the routing forms (rules, calendars, SLA policies, assignment, routing profiles)
// share: a refusal shown beside Save with the field it names, and a document read
// before it is edited.

export type FormErr = { text: string; field: string } | null;

/** The end of a form: the refusal (its field in `data-field`), Cancel and Save. */
export function FormEnd({ error, done, saveId = "admin-save" }: { error: FormErr; done: (saved: boolean) => void; saveId?: string }) {
  const { t } = useI18n();
  return (
    <>
      {error && <p className="error" role="alert" data-testid="form-error" data-field={error.field}>{error.text}</p>}
      <div className="actions">
        <button type="button" onClick={() => done(false)}>{t("common.cancel")}</button>
        <button className="primary" type="submit" data-testid={saveId}>{t("common.save")}</button>
      </div>
    </>
  );
}

/** A document read from `path` to edit: it (null while read), its setter, the form's
 * refusal and its setter (a failed read is shown as one). */
export function useDoc<T>(path: string, loaded?: (doc: T) => void) {
  const { t } = useI18n();
  const [doc, setDoc] = useState<T | null>(null);
  const [error, setError] = useState<FormErr>(null);
  useEffect(() => {
    api
      .get<T>(path)
      .then((d) => {
        setDoc(d);
        loaded?.(d);
      })
      .catch((e) => setError({ text: errorText(e, t), field: "" }));
    // read once per path; `loaded` is the caller's and need not be stable
    // (the form re-reads only when it is opened for another document)
  }, [path, t]);
  return { doc, setDoc, error, setError };
}

/** What a form shows while its document is read, or why it could not be. */
export function Waiting({ error }: { error: FormErr }) {
  const { t } = useI18n();
  return error ? <p className="error">{error.text}</p> : <p className="muted">{t("list.loading")}</p>;
}

/** What a notice says, kept as how to say it: a change of language says it anew. */
export type Say = (t: T) => string;

/** A page's notice (null: none) and its setter. */
export function useNotice(): [string, (say: Say | null) => void] {
  const { t } = useI18n();
  const [say, setSay] = useState<Say | null>(null);
  const set = useCallback((next: Say | null) => setSay(() => next), []); // stable: effects may depend on it
  return [say ? say(t) : "", set];
}
