package rest

import (
	"mime"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// errMediaType is the answer to a body sent as anything but JSON.
var errMediaType = &apiError{fiber.StatusUnsupportedMediaType, "unsupported_media_type",
	"The request body must be sent with Content-Type: application/json."}

// jsonBody reads the body of a route that takes JSON. A body in another
// media type is refused before it is read, so a form or text/plain post
// (which a browser sends cross-site without a preflight) never acts. An
// empty body needs no Content-Type: decode answers 400 naming what is
// missing.
func jsonBody(c *fiber.Ctx, v any) error {
	if len(c.Body()) > 0 && !isJSON(c.Get(fiber.HeaderContentType)) {
		return errMediaType
	}
	return decode(c.Body(), v)
}

// isJSON: application/json, in any case, with no charset or UTF-8 (the only
// encoding JSON has, RFC 8259 section 8.1).
func isJSON(contentType string) bool {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}
