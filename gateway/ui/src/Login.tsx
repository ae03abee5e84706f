import { FormEvent, ReactNode, useState } from "react";
import { api, ApiError, setCsrf } from "./api";
import { errorText } from "./errors";
import { useI18n } from "./i18n";

export function Login({ onDone, toggle }: { onDone: () => void; toggle: ReactNode }) {
  const { t } = useI18n();
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      // the session is the HttpOnly cookie: the answer holds the CSRF token, never the session token
      const s = await api.post<{ csrf_token: string }>("/sessions", { login, password, client: "browser" });
      setCsrf(s.csrf_token);
      onDone();
    } catch (err) {
      if (err instanceof ApiError && err.code === "login_locked")
        setError(t("login.locked", { s: Number(err.body?.retry_after_s ?? 60) }));
      else if (err instanceof ApiError && err.code === "address_not_allowed") setError(t("login.address"));
      else if (err instanceof ApiError && err.status === 401) setError(t("login.wrong"));
      else setError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="center">
      <form className="card narrow" onSubmit={submit} data-testid="login-form">
        <div className="row">
          <h1>{t("login.title")}</h1>
          <span className="spacer" />
          {toggle}
        </div>
        <label>
          {t("login.login")}
          <input name="login" autoComplete="username" value={login} onChange={(e) => setLogin(e.target.value)} autoFocus required />
        </label>
        <label>
          {t("login.password")}
          <input name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
        </label>
        {error && <p className="error" role="alert">{error}</p>}
        <button className="primary" disabled={busy} type="submit">{t("login.submit")}</button>
      </form>
    </div>
  );
}

export function PasswordChange({
  reason,
  onDone,
  toggle,
}: {
  reason: "temporary_password" | "password_expired";
  onDone: () => void;
  toggle: ReactNode;
}) {
  const { t } = useI18n();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState("");

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (next !== repeat) {
      setError(t("pw.mismatch"));
      return;
    }
    try {
      await api.post("/me/password", { current_password: current, new_password: next });
      onDone();
    } catch (err) {
      setError(errorText(err, t));
    }
  };

  return (
    <div className="center">
      <form className="card narrow" onSubmit={submit} data-testid="password-form">
        <div className="row">
          <h1>{t("pw.title")}</h1>
          <span className="spacer" />
          {toggle}
        </div>
        <p>{reason === "password_expired" ? t("pw.expired") : t("pw.temporary")}</p>
        <label>
          {t("pw.current")}
          <input name="current" type="password" autoComplete="current-password" value={current} onChange={(e) => setCurrent(e.target.value)} required />
        </label>
        <label>
          {t("pw.new")}
          <input name="new" type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} required />
        </label>
        <label>
          {t("pw.repeat")}
          <input name="repeat" type="password" autoComplete="new-password" value={repeat} onChange={(e) => setRepeat(e.target.value)} required />
        </label>
        {error && <p className="error" role="alert">{error}</p>}
        <button className="primary" type="submit">{t("pw.submit")}</button>
      </form>
    </div>
  );
}
