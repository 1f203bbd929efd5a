package rest

import (
	_ "embed"

	"github.com/gofiber/fiber/v2"
)

// openAPI is the REST reference, written by hand; TestOpenAPIRoutes keeps
// it and the router in step.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI needs no token: the reference holds nothing a caller without
// one may not know, and a client reads it before it has a token.
func serveOpenAPI(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openAPI)
}
