/**
 * XML answers of the AWS query protocol (IAM, STS): `<XResponse xmlns=...><XResult>...</XResult>
 * <ResponseMetadata><RequestId/></ResponseMetadata></XResponse>`, lists as `<member>` elements,
 * timestamps in ISO 8601, errors as `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
 */
export type XmlValue = string | number | boolean | Date | undefined | null | XmlValue[] | { [name: string]: XmlValue };

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function inner(v: XmlValue): string {
  if (v === undefined || v === null) return '';
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map((m) => `<member>${inner(m)}</member>`).join('');
  if (typeof v === 'object') {
    let out = '';
    for (const [k, child] of Object.entries(v)) {
      if (child === undefined || child === null) continue;
      out += `<${k}>${inner(child)}</${k}>`;
    }
    return out;
  }
  return escapeXml(String(v));
}

export function responseXml(action: string, namespace: string, result: XmlValue, requestId: string): string {
  const body = result === undefined ? '' : `<${action}Result>${inner(result)}</${action}Result>`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${namespace}">${body}<ResponseMetadata><RequestId>${escapeXml(requestId)}</RequestId></ResponseMetadata></${action}Response>`;
}

export function errorXml(namespace: string, type: 'Sender' | 'Receiver', code: string, message: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${namespace}"><Error><Type>${type}</Type><Code>${escapeXml(code)}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${escapeXml(requestId)}</RequestId></ErrorResponse>`;
}
