package rerun_test

import (
	"errors"
	"strconv"

	"github.com/looker-rerun/looker-rerun/looker"
)

func itoa(i int) string { return strconv.Itoa(i) }

func asLookerError(err error, target **looker.Error) bool { return errors.As(err, target) }
