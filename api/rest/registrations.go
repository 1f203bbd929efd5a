package rest

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
)

// userRegistrations lists one user's devices; a user has few, so there is
// one page.
func (a *api) userRegistrations(c *fiber.Ctx) error {
	rs, err := a.d.Registrations.Of(c.UserContext(), c.Params("id"))
	if err != nil {
		return fmt.Errorf("registrations of %s: %w", c.Params("id"), err)
	}
	return list(c, rs, "")
}

// allRegistrations pages every user's devices for the admin.
func (a *api) allRegistrations(c *fiber.Ctx) error {
	cursor, limit, err := page(c)
	if err != nil {
		return err
	}
	rs, next, err := a.d.Registrations.All(c.UserContext(), cursor, limit)
	if err != nil {
		return fmt.Errorf("registrations after %q: %w", cursor, err)
	}
	return list(c, rs, next)
}
