/**
 * Hides the password of a connection URL (and any `password=` parameter) so that
 * URLs can appear in messages and logs. Also applied to free text such as driver
 * error messages, which sometimes echo the connection string.
 */
export function redactUrl(text: string): string {
  return (
    text
      // user:password@host; the password runs to the last "@" of the URL (an unencoded "@" in it stays hidden)
      .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)(\S*)(@[^@\s]*)/gi, '$1****$3')
      // password=... in a URL query or a key=value connection string, quoted or not
      .replace(/(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|"[^"]*"|[^&\s]*)/gi, '$1****')
  );
}
