// An integration test: a real SQLite dialect in memory, configured through process.env
// inside the test (jest gives each file its own copy of process.env).
const plug = require('@mostajs/data-plug')
const { TodoSchema, addTodo, openTodos } = require('../todo-service')

describe('todo service on an in-memory SQLite dialect', () => {
  beforeAll(() => {
    process.env.DB_DIALECT = 'sqlite'
    process.env.SGBD_URI = ':memory:'
    process.env.DB_SCHEMA_STRATEGY = 'create'
    plug.registerSchema(TodoSchema)
  })
  afterAll(() => plug.disconnect())

  test('writes and reads real rows', async () => {
    const a = await addTodo('write tests')
    expect(a).toMatchObject({ title: 'write tests', done: false })
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/)
    await addTodo('ship')
    const todos = await openTodos()
    expect(todos.map((t) => t.title)).toEqual(['ship', 'write tests'])
  })

  test('errors carry stable codes and are Errors in the test realm', async () => {
    const d = await plug.getDialect()
    await expect(d.create(TodoSchema, {})).rejects.toMatchObject({ code: 'E_NOT_NULL', field: 'title' })
    await expect(d.create(TodoSchema, {})).rejects.toBeInstanceOf(Error)
    await expect(d.find(TodoSchema, { done: { $near: 1 } })).rejects.toThrow(/unknown operator/)
  })
})
