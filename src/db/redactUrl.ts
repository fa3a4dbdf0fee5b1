/**
 * Hides the password of a connection URL (and any `password=` parameter) so that
 * URLs can appear in messages and logs. Also applied to free text such as driver
 * error messages, which sometimes echo the connection string.
 */
export function redactUrl(text: string): string {
  return text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)([^@\s]*)(@)/gi, '$1****$3')
    .replace(/(\bpassword=)([^&\s]*)/gi, '$1****');
}
