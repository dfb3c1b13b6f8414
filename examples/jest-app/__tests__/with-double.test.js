// A unit test: the dialect is a test double injected with setDialect.
const plug = require('@mostajs/data-plug')
const { addTodo, openTodos } = require('../todo-service')

describe('todo service with an injected double', () => {
  const calls = []
  beforeEach(() => {
    calls.length = 0
    plug.setDialect({
      create: async (schema, data) => (calls.push(['create', schema.collection, data]), { id: 't1', ...data }),
      find: async (schema, filter, options) => (calls.push(['find', schema.collection, filter, options]), [{ id: 't1', title: 'x', done: false }]),
    })
  })
  afterEach(() => plug.resetDialect())

  test('create goes to the injected dialect', async () => {
    await expect(addTodo('buy milk')).resolves.toEqual({ id: 't1', title: 'buy milk' })
    expect(calls).toEqual([['create', 'todos', { title: 'buy milk' }]])
  })

  test('reads go to the injected dialect with the app filter', async () => {
    await expect(openTodos()).resolves.toEqual([{ id: 't1', title: 'x', done: false }])
    expect(calls[0]).toEqual(['find', 'todos', { done: false }, { sort: { title: 1 } }])
  })
})
